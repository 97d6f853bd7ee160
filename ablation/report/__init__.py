"""What a reader sees: the arm report, the study report with its effects, claims and
curve reading, figures, the published numbers, the DVC view of a study. The top:
imports any package below, and none imports it."""
