"""Who may do what: roles and scopes, staff authentication, signed partner links, the case-file access log."""
