"""Pure logic, no I/O: failure codes and errors, money, account field mapping, invoice line trees,
identifier rules. Every other room may use it; it uses none of them."""
