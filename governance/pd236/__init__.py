"""PD236: Qoima's access protocol for the state service for control of access to personal data
(docs/pd236.md): the security token (`token`), the message and its delivery (`client`,
`reporter`), and the testing act (`test_act`)."""
