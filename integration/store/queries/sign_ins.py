"""Failed console sign-ins per client address (``integration.store.sign_ins``)."""
from sqlalchemy import text

# Newest first: the limit's wait ends when the oldest of the newest ``n`` leaves the window.
RECENT = text("SELECT failed_at FROM console_sign_in_failures WHERE address = :address AND failed_at > :since"
              " ORDER BY failed_at DESC LIMIT :n")
RECORD = text("INSERT INTO console_sign_in_failures (address, failed_at) VALUES (:address, :now)")
PRUNE = text("DELETE FROM console_sign_in_failures WHERE failed_at <= :before")
CLEAR = text("DELETE FROM console_sign_in_failures WHERE address = :address")
