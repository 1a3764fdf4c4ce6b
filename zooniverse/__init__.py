"""Talking to Zooniverse itself (the Panoptes API): fetching a project's data exports.

Not a loader: `zooniverse.exports.fetch_exports` downloads the classification, subject and
workflow exports (checked, resumable, with a manifest) that `data_loaders` then reads.
``zoolens fetch`` and the dashboard's fetch dialog both call it. No Panel here.
"""
