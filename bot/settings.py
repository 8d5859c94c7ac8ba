"""One `Settings` object, read once at start-up and passed in (never imported deep in the code).

Tests build it from a dict: ``Settings(_env_file=None, database_url=...)``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.pii_vault import check_keys
from handoff.pii import parse_policy
from handoff.policy import DEFAULT_KEYWORDS, DEFAULT_LOW_CONFIDENCE_LIMIT, DEFAULT_SENTIMENT_THRESHOLD

PLACEHOLDER_SECRETS = {"changethis", "changeme", "secret", "xxx"}
DEV_SECRET_KEY = "dev-only-secret-key-change-me"
MIN_SECRET_KEY_CHARS = 32
# ENVIRONMENT is one of these, exactly (case and surrounding spaces ignored). Anything else, "prod" and
# "dev" included, refuses to start: a typo must never fall back to development's public key.
ENVIRONMENTS = ("development", "test", "production")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # --- core -------------------------------------------------------------------------------
    environment: str = Field(
        "development",
        description="development | test | production (case-insensitive; anything else refuses to start). "
        "Outside development and test: a strong SECRET_KEY, no API docs, no CORS wildcard",
    )
    database_url: str = Field(
        "sqlite+aiosqlite:///./switchboard.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://user:pw@host/db",
    )
    secret_key: str = Field(
        DEV_SECRET_KEY, description="Signs web chat session tokens and console cookies (32+ characters in production)"
    )
    host: str = "127.0.0.1"
    port: int = 8000
    public_base_url: str = Field("http://127.0.0.1:8000", description="The URL platforms use to reach us")
    run_worker_in_web: bool = Field(True, description="Run the delivery worker inside the web process")
    redis_url: str | None = Field(
        None, description="Optional: web chat and console fan-out across several web processes"
    )

    # --- knowledge base -----------------------------------------------------------------------
    kb_path: Path = Field(Path("kb/sample"), description="Folder of articles loaded by `make run`")
    index_dir: Path = Field(Path("var/index"), description="Where the KB index files live")
    model_path: str | None = Field(None, description="Local sentence-transformers model folder (default: bundled)")
    embed_backend: Literal["onnx-int8", "onnx", "torch"] = Field(
        "onnx-int8", description="How the model runs: ONNX Runtime int8 (exported once per model), fp32, or PyTorch"
    )
    embed_threads: int = Field(1, ge=1, description="ONNX Runtime intra-op threads per embedding call")
    answer_threshold: float | None = Field(
        None, ge=0, le=1,
        description="Confidence at or above which the bot answers by itself (unset: the index's calibrated one)",
    )
    suggest_threshold: float = Field(0.2, description="Confidence at or above which a hit is suggested to agents")
    auto_answer: bool = Field(True, description="Let the bot answer customers when confident")
    kb_max_file_mb: float = Field(
        10.0, gt=0, description="`kb ingest` refuses (and reports) a source file larger than this, in MB",
    )
    kb_reload_seconds: float = Field(
        5.0, description="How often each process checks kb_index_versions for a newer index (reload_if_stale)"
    )

    # --- delivery -----------------------------------------------------------------------------
    outbox_max_attempts: int = Field(8, description="Attempts before an outbox entry is dead-lettered")
    outbox_backoff_initial: float = Field(1.0, description="First retry delay, seconds (exponential, jittered)")
    outbox_backoff_max: float = Field(300.0, description="Longest retry delay, seconds")
    outbox_lease_seconds: float = Field(60.0, description="How long a claimed entry is reserved for one worker")
    outbox_poll_seconds: float = Field(1.0, description="Worker poll interval when idle")
    send_timeout: float = Field(10.0, description="Timeout for every outbound platform call, seconds")

    # --- web chat -----------------------------------------------------------------------------
    web_max_message_chars: int = Field(2000, description="Longest web chat message accepted")
    web_rate_per_minute: int = Field(30, description="Messages one web chat session may send per minute")
    web_allowed_origins: str = Field(
        "", description="Comma-separated origins (https://shop.example) allowed to embed the widget from another "
        "site; empty: same origin only; '*' any (refused in production)"
    )
    web_session_ttl_seconds: int = Field(
        86_400, description="How long a web chat session token is valid; the widget renews it silently before then"
    )
    web_sessions_per_minute: int = Field(
        10, description="New web chat sessions one client address may start per minute (shared via REDIS_URL)"
    )

    # --- handoff ------------------------------------------------------------------------------
    handoff_message: str = Field(
        "Thanks, I've passed this to our team. A person will follow up here shortly.",
        description="Told to the customer when the conversation goes to a person",
    )
    takeover_message: str = Field(
        "{name} from our team has joined the conversation.",
        description="Told to the customer when a person takes over ({name} is replaced)",
    )
    low_confidence_limit: int = Field(
        DEFAULT_LOW_CONFIDENCE_LIMIT, description="Hand off after this many low-confidence turns in a row"
    )
    escalation_keywords: str = Field(
        ",".join(DEFAULT_KEYWORDS),
        description="Comma-separated phrases that escalate to a supervisor",
    )
    handoff_sentiment_threshold: float = Field(
        DEFAULT_SENTIMENT_THRESHOLD,
        description="Hand off when a message's anger score (VADER compound, lowered by shouting) is at "
            "or below this",
    )
    handoff_triggers: str = Field(
        "all",
        description="Escalation triggers on: 'all', 'all,-vip', or a list of keyword, asked_for_human, "
        "negative_sentiment, vip, bot_repeating, low_confidence, agent_escalate",
    )
    sla_business_hours: str = Field("mon-fri 09:00-17:00", description="Business hours for SLA clocks, or '24/7'")
    sla_timezone: str = Field("UTC", description="Time zone of the business hours (IANA name)")
    sla_targets: str = Field(
        "urgent=15m/4h,high=1h/8h,normal=4h/24h,low=8h/72h",
        description="Per priority: first-response/resolution targets in business time",
    )
    sla_holidays: str = Field(
        "", description="Comma-separated dates (2026-12-25,2027-01-01) closed all day for SLA clocks and reports"
    )
    sla_around_the_clock: str = Field("urgent", description="Priorities whose SLA clocks ignore business hours")
    sla_check_seconds: float = Field(30.0, description="How often the worker checks SLA clocks, seconds")
    sla_warn_fraction: float = Field(
        0.8, description="Warn the agents' thread once this fraction of an SLA target has elapsed (0: never)"
    )

    # --- queue, routing, idle timers (bot.people_sweep) ---------------------------------------
    reopen_window_hours: float = Field(
        24.0, description="A customer writing within this many hours of a resolution reopens the same conversation"
    )
    sla_repage_minutes: float = Field(
        30.0, description="Page a breached SLA again every N minutes until someone takes the conversation (0: once)"
    )
    auto_assign: str = Field(
        "off", description="Give waiting conversations to available agents: off | round_robin | least_loaded"
    )
    auto_assign_cap: int = Field(3, description="Most open conversations auto-assignment gives one agent")
    bot_idle_close_hours: float = Field(
        24.0, description="Close a bot conversation after this many hours without a customer reply (0: never)"
    )
    waiting_on_customer_close_days: float = Field(
        0.0,
        description="Close an assigned conversation whose last word was a person's reply after N days "
        "without a customer answer, with WAITING_ON_CUSTOMER_MESSAGE (0: never)",
    )
    waiting_on_customer_message: str = Field(
        "We haven't heard back from you, so we've closed this conversation. Just reply if you still need help.",
        description="Told to the customer when a conversation waiting on them is closed",
    )
    people_check_seconds: float = Field(
        30.0, description="How often the worker re-pages, auto-assigns, closes idle conversations and sends surveys"
    )

    # --- CSAT (bot.csat) ------------------------------------------------------------------------
    csat_enabled: bool = Field(True, description="Survey the customer after a person resolves their conversation")
    csat_after_bot: bool = Field(False, description="Also survey conversations the bot resolved alone")
    csat_delay_minutes: float = Field(5.0, description="Wait this long after the resolution before surveying")
    csat_window_hours: float = Field(72.0, description="Answers later than this after the survey are not ratings")
    csat_quiet_hours: str = Field(
        "21:00-08:00", description="No survey is sent in these hours of the customer's time zone ('' for none)"
    )
    csat_default_timezone: str = Field("UTC", description="Time zone for quiet hours when the customer's is unknown")
    csat_question: str = Field(
        "How did we do? Reply with a number from 1 (poor) to 5 (great).",
        description="The survey text",
    )
    csat_thanks: str = Field("Thank you for your feedback!", description="Sent after a rating")
    csat_closed_message: str = Field(
        "Thanks! That survey has closed, so we didn't record it as a rating. If you still need help, just tell us.",
        description="Sent when a bare rating arrives after CSAT_WINDOW_HOURS (the conversation stays resolved)",
    )
    csat_alert_at_or_below: int = Field(2, description="Ratings at or below this post to the supervisors' channel")

    # --- personal data (bot.privacy, handoff.pii) -------------------------------------------
    pii_policy: str = Field(
        "",
        description="Personal data found in messages is masked before it is stored; 'email=keep,phone=keep' "
        "also keeps those kinds in the database, encrypted with PII_KEYS (kinds: expiry, iban, ssn, email, "
        "phone; card numbers, CVVs and typed secrets are always masked)",
    )
    pii_keys: str | None = Field(
        None,
        description="Comma-separated Fernet keys, newest first, encrypting kept personal data (required when "
        "PII_POLICY keeps a kind). Rotate: put a new key first, run `switchboard pii rotate`, then drop the old",
    )
    retention_days: float = Field(
        0.0, description="Erase the text and payloads of messages older than N days (0: keep); report figures stay"
    )
    outbox_retention_days: float = Field(
        30.0, description="Delete finished outbox entries (delivered, dead, cancelled) older than N days (0: keep)"
    )
    retention_batch: int = Field(500, description="Rows the worker purges per batch when idle")

    # --- slack (on when the token and secret are set) -----------------------------------------
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = Field(None, description="xapp- token: use Socket Mode (local development)")
    slack_api_base_url: str | None = Field(None, description="Override the Slack Web API URL (tests)")
    slack_agents_channel: str | None = Field(None, description="Channel id where agent threads are posted")
    slack_supervisors_channel: str | None = Field(None, description="Channel id for escalations")
    slack_supervisor_ids: str = Field("", description="Comma-separated Slack user ids allowed to Take")
    slack_supervisor_group: str | None = Field(None, description="Slack user group id allowed to Take")
    slack_agent_ids: str = Field(
        "", description="Comma-separated Slack user ids who are agents (empty: anyone in the agents' channels); "
        "others may not act on conversations",
    )
    slack_routes: str = Field("", description="Routing rules 'sms=C123,tag:vip=C456' (else agents channel)")
    slack_process_before_response: bool = Field(
        True,
        description="Answer Slack only after the event is stored (durable; listeners stay fast). False: ack first",
    )
    slack_suggestions: int = Field(3, description="How many suggested replies each thread post shows")
    slack_timeout: float = Field(10.0, description="Timeout for every Slack Web API call, seconds")

    # --- sms / twilio (on when the account sid and token are set) ------------------------------
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_api_base_url: str | None = Field(None, description="Override the Twilio REST API URL (tests)")
    sms_default_region: str = Field("US", description="Region for numbers written without a country code")
    sms_help_text: str = Field(
        "Switchboard support: reply with your question. Reply STOP to opt out.",
        description="Answer to HELP",
    )
    sms_max_segments: int = Field(
        10,
        description="Send a reply as one concatenated SMS up to this many segments; split longer ones",
    )

    # --- web console (/console; on once a user exists: `switchboard users add`) -------------------
    console_login_attempts: int = Field(5, description="Console: failed logins in a row before an account locks")
    console_lockout_minutes: float = Field(15.0, description="Console: how long a locked account stays locked")
    console_logins_per_minute: int = Field(
        20, description="Console: login attempts per minute from one address (all accounts together)"
    )
    console_session_hours: float = Field(12.0, description="Console: a session cookie's lifetime")

    @field_validator("database_url")
    @classmethod
    def _normalise_db_url(cls, v: str) -> str:
        if v.startswith("postgres://"):
            v = "postgresql://" + v[len("postgres://") :]
        if v.startswith("postgresql://"):
            v = "postgresql+asyncpg://" + v[len("postgresql://") :]
        if v.startswith("sqlite:///"):
            v = "sqlite+aiosqlite:///" + v[len("sqlite:///") :]
        return v

    @field_validator("auto_assign")
    @classmethod
    def _known_strategy(cls, v: str) -> str:
        v = v.strip().lower().replace("-", "_")
        if v not in ("off", "round_robin", "least_loaded"):
            raise ValueError("AUTO_ASSIGN must be off, round_robin or least_loaded")
        return v

    @field_validator("csat_quiet_hours")
    @classmethod
    def _quiet_hours(cls, v: str) -> str:
        if v.strip() and not re.fullmatch(r"\s*\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2}\s*", v):
            raise ValueError("CSAT_QUIET_HOURS must look like 21:00-08:00 (or be empty)")
        return v.strip()

    @field_validator("pii_policy")
    @classmethod
    def _pii_policy(cls, v: str) -> str:
        parse_policy(v)  # raises PIIPolicyError (a ValueError) with the entry at fault
        return v.strip()

    @field_validator("environment")
    @classmethod
    def _known_environment(cls, v: str) -> str:
        name = v.strip().lower()
        if name not in ENVIRONMENTS:
            raise ValueError(f"ENVIRONMENT={v!r} is not one of {', '.join(ENVIRONMENTS)} (write it in full)")
        return name

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_production(self) -> Settings:
        if self.is_production:
            key = self.secret_key
            if key == DEV_SECRET_KEY or key.startswith("dev-only") or key.lower() in PLACEHOLDER_SECRETS:
                raise ValueError("SECRET_KEY is the public development value: set a random secret of "
                                 f"{MIN_SECRET_KEY_CHARS}+ characters in production "
                                 "(python -c 'import secrets; print(secrets.token_urlsafe(32))')")
            if len(key) < MIN_SECRET_KEY_CHARS or len(set(key)) < 8:
                raise ValueError(f"SECRET_KEY is too weak for production: use {MIN_SECRET_KEY_CHARS}+ random "
                                 "characters (python -c 'import secrets; print(secrets.token_urlsafe(32))')")
            if "*" in self.web_allowed_origins:
                raise ValueError("WEB_ALLOWED_ORIGINS='*' is refused in production: list the sites that embed "
                                 "the widget (https://shop.example,https://www.shop.example)")
        if "keep" in parse_policy(self.pii_policy).values():
            if not self.pii_keys:
                raise ValueError("PII_POLICY keeps personal data: set PII_KEYS to one or more Fernet keys "
                                 "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key()"
                                 ".decode())')")
            check_keys(self.pii_keys)
        for name in ("slack_signing_secret", "twilio_auth_token"):
            value = getattr(self, name)
            if value is not None and value.lower() in PLACEHOLDER_SECRETS:
                raise ValueError(f"{name.upper()} is a placeholder")
        return self

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_bot_token and self.slack_signing_secret) or bool(self.slack_app_token)

    @property
    def sms_enabled(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token)


def load_settings() -> Settings:
    """`Settings()` from the environment, or exit (status 2) with one clear line per problem instead of
    a traceback: how `switchboard serve`/`worker` and `uvicorn bot.app:create_app --factory` start."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = [f"  {'.'.join(str(p) for p in e['loc']).upper() or 'settings'}: "
                    f"{str(e['msg']).removeprefix('Value error, ')}" for e in exc.errors()]
        sys.stderr.write("Switchboard refuses to start: the configuration is not safe to run.\n"
                         + "\n".join(problems) + "\n")
        raise SystemExit(2) from None


def markdown_table() -> str:
    """The README's configuration table, generated from the fields above (kept in sync by a test)."""
    rows = ["| variable | default | what it does |", "| --- | --- | --- |"]
    for name, f in Settings.model_fields.items():
        default = f.default
        shown = "(unset)" if default is None else f"`{default}`"
        if name in ("secret_key",):
            shown = "a development-only value (refused in production)"
        desc = (f.description or "").replace("|", "\\|")
        shown = shown.replace("|", "\\|")
        rows.append(f"| `{name.upper()}` | {shown} | {desc} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
