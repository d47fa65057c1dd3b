"""The run machinery behind the DVC pipeline: params and profiles, plans, the run store, results.

Nothing in the paper's library (`pipeline/*.py`) imports from here; the
stage scripts in `stages/` are thin calls into these modules.
"""
