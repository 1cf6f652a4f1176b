"""HireSync: AI-interview results from vendors to the EHR, validated, mapped and audited."""
