"""What goes out: grades.csv, the LMS imports, feedback, the class report, similarity."""
