"""Who may do what: roles and scopes (``permissions``), staff logins (``auth``), signed
partner links (``tokens``), the case-file access log (``log``).
"""
