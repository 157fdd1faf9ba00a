# -*- coding: utf-8 -*-
# Copyright: (c) 2026, pitcopy developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Datasets (issue 17, item 1): the source dataset inventory (Table 3.1,
paragraph [0062]: dataset -> the source volumes it lies on) and the backup
dataset inventory of each version (Table 3.5 with the version's time stamp,
paragraphs [0072]-[0076]).

The inventory is the method's: resolved when the pool is defined (a path on
no source is refused), resolved again before each copy (what the version
holds is what the sources held at its point in time; a dataset that moved
or vanished since is said on the version's record, never a reason not to
copy), and kept per replication record. Which source volume a path lies on
is the backend's question (``Backend.locate_path``): this file names no
tool and no mount.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
from dataclasses import replace

from ansible_collections.pitcopy.versions.plugins.module_utils._errors import InvalidInput


def _where(path, places):
    return ", ".join("%s%s" % (p.source, " (at %s)" % p.at if p.at else "") for p in places) or "no source"


def resolve_datasets(backend, definition):
    """``definition`` with every dataset's places (the source dataset
    inventory), or InvalidInput naming the dataset, its path and what is
    accepted: a path that is not an existing directory, or that lies on
    none of the pool's source volumes."""
    out = []
    for index, ds in enumerate(definition.datasets):
        where = "datasets[%d]" % index
        path = os.path.normpath(ds.path)
        if not os.path.isdir(path):
            raise InvalidInput("%s: path %s of dataset %s is not an existing directory on this host; a dataset is a "
                               "directory on the pool's source volumes (%s); create it, mount its filesystem or "
                               "correct the path; nothing was changed" % (
                                   where, ds.path, ds.name, ", ".join(definition.sources)))
        places = backend.locate_path(definition, path)
        if not places:
            raise InvalidInput("%s: path %s of dataset %s lies on none of the source volumes of copy pool %s (%s): "
                               "its copies would not hold it. Name a directory of a mounted source, or add the "
                               "volume holding it to sources; nothing was changed" % (
                                   where, ds.path, ds.name, definition.name, ", ".join(definition.sources)))
        out.append(replace(ds, path=path, places=tuple(places)))
    return replace(definition, datasets=tuple(out))


def held_datasets(datasets, pairs):
    """The datasets whose every source volume is copied by ``pairs``."""
    copied = set(p.source for p in pairs)
    return tuple(d for d in datasets if d.places and all(s in copied for s in d.sources()))


def recheck_datasets(backend, definition):
    """Before a copy: (the datasets as they lie now, warnings); the version
    holds those whose sources it copies (``held_datasets``).
    Each dataset is resolved again; one that lies elsewhere than the source
    dataset inventory says is recorded as it lies now and said, one that
    lies on no source any more (removed, its filesystem not mounted) is not
    held by the version and said. Neither stops the copy: the sources are
    copied whole either way."""
    held, warnings = [], []
    for ds in definition.datasets:
        places = tuple(backend.locate_path(definition, ds.path)) if os.path.isdir(ds.path) else ()
        if not places:
            warnings.append("dataset %s: %s lies on no source volume of copy pool %s now (the inventory says %s); "
                            "this version does not hold it. Mount it again, or correct datasets with "
                            "pitcopy.versions.copy_pool" % (ds.name, ds.path, definition.name,
                                                            _where(ds.path, ds.places)))
            continue
        if places != ds.places:
            warnings.append("dataset %s: %s lies on %s now, not on %s as the source dataset inventory says; this "
                            "version holds it as it lies now. Run pitcopy.versions.copy_pool again to update the "
                            "inventory" % (ds.name, ds.path, _where(ds.path, places), _where(ds.path, ds.places)))
        held.append(replace(ds, places=places))
    return tuple(held), warnings


def dataset_versions(state, name):
    """copy_pool_info's ``dataset`` answer: the kept versions that hold
    dataset ``name``, oldest first, each ``{version, created, label,
    status, held, sources, places}``, and since when (the oldest kept
    version's time stamp)."""
    versions = []
    for rec in sorted(state.replication_records, key=lambda r: r.version):
        ds = rec.dataset(name)
        if ds is None:
            continue
        versions.append({"version": rec.version, "created": rec.created, "label": rec.label,
                         "status": rec.status, "held": rec.held, "path": ds.path, "sources": ds.sources(),
                         "places": [p.as_dict() for p in ds.places]})
    return {"name": name, "versions": versions,
            "since": versions[0]["created"] if versions else None,
            "defined": state.definition.dataset(name) is not None}


def check_dataset_name(state, name, what):
    """InvalidInput unless ``name`` is a dataset of the pool's definition or
    of one of its versions."""
    known = sorted(set([d.name for d in state.definition.datasets] +
                       [d.name for r in state.replication_records for d in r.datasets]))
    if name not in known:
        listed = ", ".join(known) or "none (copy_pool datasets names them)"
        raise InvalidInput("%s: dataset %r is not a dataset of copy pool %s; its datasets are: %s; nothing was "
                           "changed" % (what, name, state.definition.name, listed))


def place_of(dataset, rel):
    """(the place of ``dataset`` that holds dataset-relative path ``rel``,
    the path relative to that source volume's root)."""
    best = None
    for place in dataset.places:
        if place.at == "" or rel == place.at or rel.startswith(place.at + "/"):
            if best is None or len(place.at) > len(best.at):
                best = place
    sub = rel if not best.at else rel[len(best.at):].lstrip("/")
    return best, "/".join(x for x in (best.path, sub) if x)
