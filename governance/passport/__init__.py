"""The data passport (DM385 chapter 2, Appendix 1): the document (`document`), its exports
(`export`), its versions in `qoima_meta` (`catalog`), usage statistics (`usage`) and
OpenLineage events (`lineage`). docs/passport.md."""
