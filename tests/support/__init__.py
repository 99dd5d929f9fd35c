"""What the tests share: test cases and layers, the job functions workers import by dotted
name, scripts run in instances, the documentation's add-on, old databases."""
