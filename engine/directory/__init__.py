"""The partner directory beyond the catalogue: services of the national referential
(data·inclusion) imported as offers, what the network adds to them, and their search."""
