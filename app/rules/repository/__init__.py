"""The rules repository: where every rule, cases, lock and pointer file lives.

Every rule about file names and folders is in :mod:`.layout`, so the service,
the authoring tools and the CLI agree on one layout (see rules/README.md).
"""
