"""Case kits: shared, tested analyses per case type, one subpackage each.

Rule: a kit is a library a case project calls from its pipeline (``dvc.yaml``) and
notebooks; it never reads or writes outside the case folder it is given, and importing a
kit is cheap (heavy libraries are imported inside the functions that use them).
``legal_ethics`` finds a kit's checklist items as ``casuistiek.<case_type>.ethics_items``.
"""
