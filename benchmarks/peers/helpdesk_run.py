"""Run inside the throwaway django-helpdesk virtualenv (``hub bench mail`` makes it): time
django-helpdesk's own mail processing (``helpdesk.email.extract_email_metadata``, what its
``get_email`` command calls for each mail of a local mailbox) over a directory of .eml files.

Usage: python helpdesk_run.py MAIL_DIR WORK_DIR; prints one JSON object.
"""

import json
import logging
import os
import sys
import time

mail_dir, work = sys.argv[1], sys.argv[2]
os.environ["DJANGO_SETTINGS_MODULE"] = "bench_settings"
sys.path.insert(0, work)
with open(os.path.join(work, "bench_settings.py"), "w") as f:
    f.write(
        f"""
SECRET_KEY = "bench"
DEBUG = False
USE_TZ = True
SITE_ID = 1
ROOT_URLCONF = "bench_urls"
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3",
    "NAME": {os.path.join(work, "helpdesk.db")!r}}}}}
INSTALLED_APPS = ["django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
    "django.contrib.sessions", "django.contrib.messages", "django.contrib.staticfiles",
    "django.contrib.sites", "django.contrib.humanize", "rest_framework", "account",
    "pinax.invitations",
    "pinax.teams", "helpdesk"]
MIDDLEWARE = []
TEMPLATES = [{{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [],
    "APP_DIRS": True, "OPTIONS": {{"context_processors": []}}}}]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
MEDIA_ROOT = {os.path.join(work, "media")!r}
STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
HELPDESK_ENABLE_ATTACHMENTS = True
"""
    )

with open(os.path.join(work, "bench_urls.py"), "w") as f:
    f.write(
        "from django.urls import include, path\n"
        "urlpatterns = [path('helpdesk/', include('helpdesk.urls', namespace='helpdesk'))]\n"
    )

import django  # noqa: E402

django.setup()
from django.core.management import call_command  # noqa: E402

call_command("migrate", verbosity=0)
from helpdesk.email import extract_email_metadata  # noqa: E402
from helpdesk.models import FollowUp, Queue, Ticket  # noqa: E402

queue = Queue.objects.create(
    title="Support",
    slug="support",
    email_address="support@shop.example",
    allow_email_submission=True,
    email_box_type="local",
    email_box_local_dir=mail_dir,
)
logger = logging.getLogger("bench")
logger.addHandler(logging.NullHandler())
logger.propagate = False
files = sorted(os.listdir(mail_dir))
texts = []
for name in files:
    with open(os.path.join(mail_dir, name), "rb") as f:
        texts.append(f.read().decode("utf-8", errors="replace"))  # what its reader does
errors = 0
first_error = ""
start = time.perf_counter()
for text in texts:
    try:
        extract_email_metadata(message=text, queue=queue, logger=logger)
    except Exception as err:
        errors += 1
        first_error = first_error or f"{type(err).__name__}: {err}"[:300]
elapsed = time.perf_counter() - start
print(
    json.dumps(
        {
            "mails": len(texts),
            "seconds": round(elapsed, 3),
            "per_s": round(len(texts) / elapsed, 1),
            "tickets": Ticket.objects.count(),
            "followups": FollowUp.objects.count(),
            "errors": errors,
            "first_error": first_error,
            "django_helpdesk": __import__("importlib.metadata").metadata.version("django-helpdesk"),
        }
    )
)
