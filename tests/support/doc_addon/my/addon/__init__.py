"""my.addon: the add-on that the documentation's examples write (docs/getting-started.md).

tests/inprocess/test_doc_examples.py checks that the blocks the documentation shows under
``<!-- module: tests/support/doc_addon/my/addon/... -->`` are this code; scripts/dist_deploy.py
installs it into the production-path deployment.
"""
