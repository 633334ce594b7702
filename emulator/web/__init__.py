"""`sgemu ui`: a live view of a running lab in the browser, a client of the lab's engine like testing/."""
