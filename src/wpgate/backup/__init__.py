"""Full backups of a site, taken on its host, with a second copy off-site, and the checks that prove them.

A backup is a folder `backup.dir/<id>/` on the site's host (id `<site>-YYYYMMDD-HHMMSS-xxxx`, UTC):

    database.sql.gz   the dump client's dump of the site's whole database, gzip-compressed
    files.tar.gz      every file under the WordPress root (GNU tar + gzip), less the backup folder
                      when it lies inside the root and wpgate's `wpgate-aside` folders
    files.index       tar's own listing of the archive, written as it archived
    inventory.json    the site's inventory at the time of the backup
    tables.json       every table of the database: {name: {"rows", "checksum"}} (CHECKSUM TABLE)
    manifest.json     id, site, time, and each of the parts above with its sha256 and bytes

It is written as `<id>.partial/` and renamed once complete; the off-site copy, `backup.offsite/<id>/`
on the machine running wpgate, likewise. Folders are 0700 and files 0600 in both places.

    take()              back a site up (take.py)
    find()              its backups, newest first (checks.py)
    verify_copies()     every part's sha256 on the host and off-site
    dump_problems()     the dump decompresses, ends with the client's completion line, has every table
    archive_problems()  the files archive lists completely
    restore_check()     restored into a scratch database (or scratch tables) and folder, equal to the backup

With `backup.engine: restic` the same functions read and write restic repositories instead (restic.py);
engines.py chooses, by the site's `backup.engine`.
    restore_database()  the site's own database put back from the backup (restore.py, for rollback)
    table_checksums()   the site's tables now: {name: {"rows", "checksum"}}
"""

from wpgate.backup.checks import (RestoreCheck, archive_problems, drop_scratch_leftovers, dump_problems, is_restic,
                                  table_checksums, table_differences)
from wpgate.backup.database import BackupError, BackupNotFound
from wpgate.backup.model import ID, Backup, backup_config, site_of
from wpgate.backup.scratch import ScratchJournal
from wpgate.backup.engines import (check_restore, content_problems, find, find_one, restore_check, restore_database,
                                   take, verify_copies)

__all__ = ["Backup", "BackupError", "BackupNotFound", "ID", "RestoreCheck", "ScratchJournal", "archive_problems", "backup_config",
           "check_restore", "drop_scratch_leftovers", "dump_problems", "content_problems", "is_restic", "find", "find_one", "restore_check", "restore_database", "site_of", "table_checksums",
           "table_differences", "take", "verify_copies"]
