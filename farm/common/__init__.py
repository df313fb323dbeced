"""Small helpers shared by every room of the project; they import nothing else of it."""
