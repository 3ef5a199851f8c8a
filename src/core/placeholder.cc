// Replaced by the decision core (issue 3).
