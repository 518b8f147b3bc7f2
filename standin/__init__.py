"""The local stand-in: moto's server for AWS, real HAProxy and HTTP servers on loopback.

Demo and test plumbing only. Nothing here is part of the deployed functions (chalice packages
`app.py` and `chalicelib/`), and nothing here sends traffic outside 127.0.0.0/8.
"""
