"""adlfs's Azure Blob filesystem with a ``makedirs`` that creates a missing container.

adlfs inherits fsspec's no-op ``makedirs``, so writing below a container that
does not exist fails, whereas s3fs and gcsfs create a missing bucket there.
sdpipe calls ``makedirs`` only before it writes (output folders, output locks,
load-test logs), so an output container is created when it is missing and an
input container never is.
"""

from __future__ import annotations

import logging
from typing import Any

from adlfs import AzureBlobFileSystem
from fsspec.asyn import sync_wrapper

from sdpipe.io.secrets import mask_text

logger = logging.getLogger(__name__)


class ContainerCreatingFileSystem(AzureBlobFileSystem):
    """An ``AzureBlobFileSystem`` whose ``makedirs`` creates the path's container when it is missing."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._known_containers: set[str] = set()

    async def _makedirs(self, path: str, exist_ok: bool = False) -> None:
        # As in adlfs, folders are only name prefixes, so an existing one raises no FileExistsError.
        from azure.core.exceptions import HttpResponseError, ResourceExistsError

        container = self.split_path(path)[0]
        if not container or container in self._known_containers:
            return
        async with self.service_client.get_container_client(container) as client:
            try:
                await client.create_container()
                logger.info("created the missing container %s", container)
            except ResourceExistsError:
                pass
            except HttpResponseError as exc:
                if exc.status_code != 403:
                    raise
                # The credential may not create containers (a container SAS, for example); the
                # first write then reports a missing container or the missing permission.
                logger.debug("not allowed to create container %s: %s", container, mask_text(str(exc).splitlines()[0]))
        self._known_containers.add(container)
        self.invalidate_cache(container)

    makedirs = sync_wrapper(_makedirs)
