"""The CI regression gate: versioned baseline documents, and the check of a results folder
against one (margins from seed noise, power, one message per regression)."""
