from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_UPLOADING: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_COMPLETED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]

class ImageStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMAGE_STATUS_UNSPECIFIED: _ClassVar[ImageStatus]
    IMAGE_STATUS_OK: _ClassVar[ImageStatus]
    IMAGE_STATUS_ERROR: _ClassVar[ImageStatus]
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_UPLOADING: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_COMPLETED: JobState
JOB_STATE_CANCELLED: JobState
JOB_STATE_FAILED: JobState
IMAGE_STATUS_UNSPECIFIED: ImageStatus
IMAGE_STATUS_OK: ImageStatus
IMAGE_STATUS_ERROR: ImageStatus

class JobSpec(_message.Message):
    __slots__ = ("top_k", "name", "model", "explain", "source", "webhook", "max_failed", "job_key", "incremental")
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    MAX_FAILED_FIELD_NUMBER: _ClassVar[int]
    JOB_KEY_FIELD_NUMBER: _ClassVar[int]
    INCREMENTAL_FIELD_NUMBER: _ClassVar[int]
    top_k: int
    name: str
    model: str
    explain: bool
    source: str
    webhook: str
    max_failed: str
    job_key: str
    incremental: str
    def __init__(self, top_k: _Optional[int] = ..., name: _Optional[str] = ..., model: _Optional[str] = ..., explain: _Optional[bool] = ..., source: _Optional[str] = ..., webhook: _Optional[str] = ..., max_failed: _Optional[str] = ..., job_key: _Optional[str] = ..., incremental: _Optional[str] = ...) -> None: ...

class ResultTablePart(_message.Message):
    __slots__ = ("arrow_stream",)
    ARROW_STREAM_FIELD_NUMBER: _ClassVar[int]
    arrow_stream: bytes
    def __init__(self, arrow_stream: _Optional[bytes] = ...) -> None: ...

class FileChunk(_message.Message):
    __slots__ = ("path", "data", "last", "client_error")
    PATH_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ERROR_FIELD_NUMBER: _ClassVar[int]
    path: str
    data: bytes
    last: bool
    client_error: str
    def __init__(self, path: _Optional[str] = ..., data: _Optional[bytes] = ..., last: _Optional[bool] = ..., client_error: _Optional[str] = ...) -> None: ...

class FileChunks(_message.Message):
    __slots__ = ("chunks",)
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    chunks: _containers.RepeatedCompositeFieldContainer[FileChunk]
    def __init__(self, chunks: _Optional[_Iterable[_Union[FileChunk, _Mapping]]] = ...) -> None: ...

class UploadRequest(_message.Message):
    __slots__ = ("spec", "file", "files")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    spec: JobSpec
    file: FileChunk
    files: FileChunks
    def __init__(self, spec: _Optional[_Union[JobSpec, _Mapping]] = ..., file: _Optional[_Union[FileChunk, _Mapping]] = ..., files: _Optional[_Union[FileChunks, _Mapping]] = ...) -> None: ...

class ManifestLines(_message.Message):
    __slots__ = ("paths",)
    PATHS_FIELD_NUMBER: _ClassVar[int]
    paths: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, paths: _Optional[_Iterable[str]] = ...) -> None: ...

class ManifestRequest(_message.Message):
    __slots__ = ("spec", "lines")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    spec: JobSpec
    lines: ManifestLines
    def __init__(self, spec: _Optional[_Union[JobSpec, _Mapping]] = ..., lines: _Optional[_Union[ManifestLines, _Mapping]] = ...) -> None: ...

class SubmitPathRequest(_message.Message):
    __slots__ = ("path", "spec")
    PATH_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    path: str
    spec: JobSpec
    def __init__(self, path: _Optional[str] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("id", "state", "total", "succeeded", "failed", "created_at", "updated_at", "finished_at", "error", "spec", "mode", "cached", "unchanged")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    SUCCEEDED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    id: str
    state: JobState
    total: int
    succeeded: int
    failed: int
    created_at: float
    updated_at: float
    finished_at: float
    error: str
    spec: JobSpec
    mode: str
    cached: int
    unchanged: int
    def __init__(self, id: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., total: _Optional[int] = ..., succeeded: _Optional[int] = ..., failed: _Optional[int] = ..., created_at: _Optional[float] = ..., updated_at: _Optional[float] = ..., finished_at: _Optional[float] = ..., error: _Optional[str] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ..., mode: _Optional[str] = ..., cached: _Optional[int] = ..., unchanged: _Optional[int] = ...) -> None: ...

class FindJobRequest(_message.Message):
    __slots__ = ("job_key",)
    JOB_KEY_FIELD_NUMBER: _ClassVar[int]
    job_key: str
    def __init__(self, job_key: _Optional[str] = ...) -> None: ...

class ListJobFilesRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class JobFiles(_message.Message):
    __slots__ = ("paths",)
    PATHS_FIELD_NUMBER: _ClassVar[int]
    paths: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, paths: _Optional[_Iterable[str]] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetResultsRequest(_message.Message):
    __slots__ = ("job_id", "start_index", "follow")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    START_INDEX_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    start_index: int
    follow: bool
    def __init__(self, job_id: _Optional[str] = ..., start_index: _Optional[int] = ..., follow: _Optional[bool] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class DeleteJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class DeleteJobResponse(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "state", "name")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    state: JobState
    name: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., name: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListClassesRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class ListClassesResponse(_message.Message):
    __slots__ = ("classes", "model_name", "untrained", "model_version", "target", "precision", "explains", "resize", "crop", "architecture", "interpolation", "grayscale")
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    UNTRAINED_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    EXPLAINS_FIELD_NUMBER: _ClassVar[int]
    RESIZE_FIELD_NUMBER: _ClassVar[int]
    CROP_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    INTERPOLATION_FIELD_NUMBER: _ClassVar[int]
    GRAYSCALE_FIELD_NUMBER: _ClassVar[int]
    classes: _containers.RepeatedScalarFieldContainer[str]
    model_name: str
    untrained: bool
    model_version: str
    target: str
    precision: str
    explains: bool
    resize: int
    crop: int
    architecture: str
    interpolation: str
    grayscale: bool
    def __init__(self, classes: _Optional[_Iterable[str]] = ..., model_name: _Optional[str] = ..., untrained: _Optional[bool] = ..., model_version: _Optional[str] = ..., target: _Optional[str] = ..., precision: _Optional[str] = ..., explains: _Optional[bool] = ..., resize: _Optional[int] = ..., crop: _Optional[int] = ..., architecture: _Optional[str] = ..., interpolation: _Optional[str] = ..., grayscale: _Optional[bool] = ...) -> None: ...

class Prediction(_message.Message):
    __slots__ = ("label", "index", "probability")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    label: str
    index: int
    probability: float
    def __init__(self, label: _Optional[str] = ..., index: _Optional[int] = ..., probability: _Optional[float] = ...) -> None: ...

class ClassActivationMap(_message.Message):
    __slots__ = ("class_index", "rows", "cols", "values")
    CLASS_INDEX_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    class_index: int
    rows: int
    cols: int
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, class_index: _Optional[int] = ..., rows: _Optional[int] = ..., cols: _Optional[int] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class ImageResult(_message.Message):
    __slots__ = ("index", "path", "status", "top_k", "error", "cam", "sha256", "finished_at")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CAM_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    index: int
    path: str
    status: ImageStatus
    top_k: _containers.RepeatedCompositeFieldContainer[Prediction]
    error: str
    cam: ClassActivationMap
    sha256: str
    finished_at: float
    def __init__(self, index: _Optional[int] = ..., path: _Optional[str] = ..., status: _Optional[_Union[ImageStatus, str]] = ..., top_k: _Optional[_Iterable[_Union[Prediction, _Mapping]]] = ..., error: _Optional[str] = ..., cam: _Optional[_Union[ClassActivationMap, _Mapping]] = ..., sha256: _Optional[str] = ..., finished_at: _Optional[float] = ...) -> None: ...

class ClassifyImage(_message.Message):
    __slots__ = ("name", "data")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    name: str
    data: bytes
    def __init__(self, name: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class ClassifyRequest(_message.Message):
    __slots__ = ("images", "top_k", "model", "explain")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    EXPLAIN_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[ClassifyImage]
    top_k: int
    model: str
    explain: bool
    def __init__(self, images: _Optional[_Iterable[_Union[ClassifyImage, _Mapping]]] = ..., top_k: _Optional[int] = ..., model: _Optional[str] = ..., explain: _Optional[bool] = ...) -> None: ...

class ClassifyResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ImageResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ImageResult, _Mapping]]] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WorkerStatus(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("redis_ok", "model_ok", "model", "model_error", "workers", "checked_at")
    REDIS_OK_FIELD_NUMBER: _ClassVar[int]
    MODEL_OK_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MODEL_ERROR_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    CHECKED_AT_FIELD_NUMBER: _ClassVar[int]
    redis_ok: bool
    model_ok: bool
    model: str
    model_error: str
    workers: _containers.RepeatedCompositeFieldContainer[WorkerStatus]
    checked_at: float
    def __init__(self, redis_ok: _Optional[bool] = ..., model_ok: _Optional[bool] = ..., model: _Optional[str] = ..., model_error: _Optional[str] = ..., workers: _Optional[_Iterable[_Union[WorkerStatus, _Mapping]]] = ..., checked_at: _Optional[float] = ...) -> None: ...
