"""What arrives: the LMS's download read as data, one submission per student."""
