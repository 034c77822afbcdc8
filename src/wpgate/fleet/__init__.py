"""Rollouts: one approved group release deployed site by site in waves, halting on the first site that fails.

`waves` turns `--waves` into the planned waves, `ledger` keeps `rollout.json`, `site` runs one site's
deployment (the same code in a local process and in a `wpgate worker`), `engines` start and watch those
deployments, and `controller` decides waves, halts and resumes.
"""
