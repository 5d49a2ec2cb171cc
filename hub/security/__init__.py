"""Broker-side security: per-device credentials, the Mosquitto password and ACL files.

- `passwords`: Mosquitto 2.0 password hashes (`$7$` PBKDF2-SHA512), pure.
- `acl`: the ACL file of PROTOCOL §2, pure.
- `credentials`: the hashed credential record in `<VH_DATA_DIR>/credentials.db`
  and the files written from it.
- `cli`: `villagehub devices credentials issue|rotate|revoke|list|write-files`.
"""
