"""The official dataset archives: where they come from, fetching, checking and unpacking them.

    sources     every dataset's archives and folders
    fetch       resumable downloads
    checksums   the SHA-256 ledger of archives known to unpack
    archive     safe unpacking (no member escapes its folder)
    download    the whole path: fetch, check, unpack, verify
    verify      a folder checked against the official layout and counts
"""
