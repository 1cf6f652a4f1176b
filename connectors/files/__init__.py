"""File drops: CSV and Excel files that business departments put in a folder."""
