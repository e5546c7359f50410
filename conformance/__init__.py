"""liaotian-conformance: runs the MUSTs and SHOULDs of SPEC.md against any liaotian server
over raw bytes. Imports only msgpack and the standard library (see conformance/README.md)."""
