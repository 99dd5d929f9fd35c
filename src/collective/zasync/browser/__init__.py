"""The Classic UI's pages: the control panel, My jobs, an item's jobs, and the ops views
(@@zasync-metrics, @@zasync-health). A front end: it builds on client/ only. Not for add-ons.
"""
