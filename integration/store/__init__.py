"""The store: every byte the service keeps, and every SQL statement that reads or writes it.

The inbox (events and their attempts), the ID mappings, the failure list, meter settings and the
scheduler's slots. Callers get plain values and dataclasses back; no driver type leaves this package.
"""
