"""Demo source database: a population register and a social-payments system, with a load driver."""
