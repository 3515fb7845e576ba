"""Every error Kiln raises on purpose, in one tree.

::

    KilnError                       anything Kiln reports to a user (CLI exit code 2 unless noted)
    ├── WorkspaceError              kiln.toml unreadable, a setting of the wrong type, a bad URL
    ├── MetadataError               the metadata database
    │   ├── MetadataLockedError     another process holds the database longer than the busy timeout
    │   ├── SchemaTooNewError       the database was written by a newer Kiln than this one
    │   └── NotFoundError           no artifact, execution, context or type with that id or name
    ├── ArtifactError               the artifact store
    │   ├── UnsafePathError         a path that would resolve outside the artifact root
    │   └── ArtifactStoreError      the root is unwritable or an artifact's files are missing
    ├── DataError                   data that cannot be read, split or described (file, row, column)
    │   ├── ModelFormatError        a model folder that is not one, was edited, or is newer
    │   └── SchemaError             a schema file that does not parse or says something impossible
    ├── TrainingError               a trainer's settings, data or state
    │   └── NotFittedError          a trainer or transform used before fit
    ├── RegistryError               the model registry: a model, version, alias or models:/ URI
    │   ├── ModelNotFoundError      no model, version or alias of that name (close names listed)
    │   ├── ModelNameError          a malformed model name, alias, tag key or models:/ URI
    │   ├── VersionInUseError       deleting a version that an alias points at
    │   └── RollbackError           rolling back an alias that has no previous holder
    ├── SqlError                    a kiln sql statement: syntax, a missing table or model, options
    ├── PipelineError               building a pipeline (before anything runs)
    │   ├── PipelineFileError       the file is missing, does not import, or holds no pipeline
    │   ├── PipelineDefinitionError a cycle, a type mismatch, a missing input, an unknown parameter
    │   └── ParameterError          a --param that is unknown or does not parse as its type
    ├── TriggerError                a bad --every interval, a missing watched folder, clashing flags
    ├── PipelineBusyError           the pipeline runs elsewhere in this workspace (exit code 75)
    └── RunFailedError              a step raised; the run stopped (CLI exit code 1)

Engine errors (SQLAlchemy, fsspec, the OS) are translated at the boundary with ``raise … from``
so that a user reads what failed, on which object, and what to do about it.
"""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "ArtifactStoreError",
    "DataError",
    "KilnError",
    "MetadataError",
    "MetadataLockedError",
    "ModelFormatError",
    "ModelNameError",
    "ModelNotFoundError",
    "NotFittedError",
    "NotFoundError",
    "ParameterError",
    "PipelineBusyError",
    "PipelineDefinitionError",
    "PipelineError",
    "PipelineFileError",
    "RegistryError",
    "RollbackError",
    "RunFailedError",
    "SchemaError",
    "SchemaTooNewError",
    "SqlError",
    "TrainingError",
    "TriggerError",
    "UnsafePathError",
    "VersionInUseError",
    "WorkspaceError",
]


class KilnError(Exception):
    """Base of every error Kiln raises for a user to read."""

    exit_code = 2


class WorkspaceError(KilnError):
    """The workspace or its settings are unusable."""


class MetadataError(KilnError):
    """The metadata database refused or failed an operation."""


class MetadataLockedError(MetadataError):
    """Another process held the database for longer than the busy timeout."""


class SchemaTooNewError(MetadataError):
    """The database schema is newer than this version of Kiln understands."""


class NotFoundError(MetadataError):
    """No object with the given id or name."""


class ArtifactError(KilnError):
    """The artifact store refused or failed an operation."""


class UnsafePathError(ArtifactError):
    """A path would resolve outside the artifact root."""


class ArtifactStoreError(ArtifactError):
    """The artifact root cannot be written, or an artifact's files are gone."""


class DataError(KilnError):
    """Data that cannot be read, split or described; the message names file, row and column."""


class ModelFormatError(DataError):
    """A model folder that is not one, was edited after it was saved, or is from a newer Kiln."""


class SchemaError(DataError):
    """A schema file that does not parse, or a schema that contradicts itself."""


class TrainingError(KilnError):
    """A trainer's settings, its data or its fitted state are wrong; the message says which."""


class NotFittedError(TrainingError):
    """A trainer or transform was used before ``fit``."""


class RegistryError(KilnError):
    """The model registry refused an operation; the message names the model, version or alias."""


class ModelNotFoundError(RegistryError):
    """No registered model, version or alias of that name; the message lists the close ones."""


class ModelNameError(RegistryError):
    """A model name, alias, tag key or ``models:/`` URI that is not well formed."""


class VersionInUseError(RegistryError):
    """A model version that an alias points at cannot be deleted; move the alias first."""


class RollbackError(RegistryError):
    """An alias has no previous holder to roll back to."""


class SqlError(KilnError):
    """A ``kiln sql`` statement that does not parse, names a missing table or model, or has a bad
    option; worded like BigQuery's messages (``Not found: Model ds.m``)."""


class PipelineError(KilnError):
    """A pipeline could not be built."""


class PipelineFileError(PipelineError):
    """The pipeline file is missing, fails to import, or defines no pipeline."""


class PipelineDefinitionError(PipelineError):
    """The pipeline's graph is wrong: a cycle, a type mismatch, a missing or unknown input."""


class ParameterError(PipelineError):
    """A pipeline parameter is unknown or its value does not parse as its declared type."""


class TriggerError(KilnError):
    """A bad interval, a watched folder that is missing, or options that do not go together."""


class PipelineBusyError(KilnError):
    """Another process is running this pipeline in this workspace (``--no-wait``)."""

    exit_code = 75  # EX_TEMPFAIL: try again later


class RunFailedError(KilnError):
    """A step failed and the run stopped; rerunning resumes from the cache."""

    exit_code = 1

    def __init__(self, message: str, *, run_id: str, step: str, resume_command: str) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.step = step
        self.resume_command = resume_command
