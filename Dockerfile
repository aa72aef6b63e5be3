# One image for web, worker and beat (docker-compose.yml picks the command).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# Static files are collected with the production settings the container runs with (DEBUG off),
# into var/staticfiles with the manifest of hashed names gunicorn serves them by. The key only
# passes the settings' start-up check: random, and gone with this build step.
RUN DEBUG=false SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    DATABASE_URL=postgres://unused/unused python manage.py collectstatic --no-input
# The folders the compose volumes mount exist in the image, owned by the app user: a new named
# volume takes its owner from them (mounted over a missing folder it would be root's).
RUN useradd --create-home app && mkdir -p /app/var/uploads /app/var/exports && chown -R app /app/var
USER app
EXPOSE 8000
CMD ["gunicorn", "reviewapp.wsgi", "--bind", "0.0.0.0:8000", "--workers", "4"]
