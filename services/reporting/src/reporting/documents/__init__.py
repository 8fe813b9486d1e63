"""Invoice documents: printable HTML from a Jinja template, PDF drawn with fpdf2."""
