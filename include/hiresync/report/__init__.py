"""HR analytics computed from the hub, and the report HR reads (HTML + Excel)."""
