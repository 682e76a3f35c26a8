"""Collectors: each turns one kind of input into rows for one warehouse table."""
