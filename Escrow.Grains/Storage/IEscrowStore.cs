namespace Escrow.Grains.Storage;

/// <summary>The providers whose webhooks the inbox records.</summary>
public static class WebhookProviders
{
    public const string Stripe = "stripe";
}

/// <summary>
/// This project's own tables (not the Orleans ones): the append-only escrow ledger, the queryable escrow
/// projection, alerts, the webhook inbox, the email log, inbound mail and the operators' audit trail.
/// Two implementations: <see cref="PostgresEscrowStore"/> (durable) and <see cref="InMemoryEscrowStore"/>
/// (the no-configuration run). Every write is idempotent, so a grain can re-send after a crash.
/// </summary>
public interface IEscrowStore
{
    /// <summary>
    /// Appends the ledger entries (ignoring any (escrow, seq) already stored: entries are insert-only) and
    /// upserts the projection unless a newer version is already stored, in one transaction.
    /// </summary>
    Task SyncEscrowAsync(EscrowProjection projection, IReadOnlyList<LedgerEntry> entries, CancellationToken cancellationToken = default);

    Task<EscrowProjection?> GetEscrowAsync(Guid escrowId, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<LedgerEntry>> GetLedgerAsync(Guid escrowId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Escrows ordered by created_at then id, keyset-paginated by <see cref="EscrowQuery.After"/> (an opaque cursor
    /// returned as <see cref="EscrowPage.Next"/>). Stuck (relative to <see cref="EscrowQuery.Now"/>): by
    /// <see cref="EscrowQuery.Rules"/>, <see cref="StuckRules.Default"/> when not given.
    /// </summary>
    Task<EscrowPage> QueryEscrowsAsync(EscrowQuery query, CancellationToken cancellationToken = default);

    /// <summary>Raises an alert unless one with the same dedupe key is already stored. Returns the alert (new or existing) and whether it is new.</summary>
    Task<(AlertRecord Alert, bool Created)> RaiseAlertAsync(NewAlert alert, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<AlertRecord>> ListAlertsAsync(bool openOnly, int limit, CancellationToken cancellationToken = default);

    /// <summary>Returns false when the alert does not exist. Acknowledging twice keeps the first acknowledgement.</summary>
    Task<bool> AcknowledgeAlertAsync(long alertId, string acknowledgedBy, DateTimeOffset at, CancellationToken cancellationToken = default);

    /// <summary>Acknowledges the alert and writes its audit row in one transaction: neither is kept without the other.</summary>
    Task<bool> AcknowledgeAlertAsync(long alertId, string acknowledgedBy, DateTimeOffset at, AuditEntry audit, CancellationToken cancellationToken = default);

    /// <summary>
    /// Records a webhook delivery durably (first delivery inserts; later deliveries bump the attempt count) and
    /// says whether the event was already processed. Processing is marked separately, after the work succeeded.
    /// </summary>
    Task<WebhookReceipt> RecordWebhookAsync(string provider, string eventId, string eventType, DateTimeOffset receivedAt, CancellationToken cancellationToken = default);

    Task MarkWebhookProcessedAsync(string provider, string eventId, string outcome, DateTimeOffset processedAt, CancellationToken cancellationToken = default);

    /// <summary>Whether an event was already processed (a read: no commit).</summary>
    Task<bool> IsWebhookProcessedAsync(string provider, string eventId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Records, in one commit, an event whose work has just succeeded: inserted already processed, or an earlier
    /// unprocessed row marked processed. The first processing wins.
    /// </summary>
    Task RecordProcessedWebhookAsync(string provider, string eventId, string eventType, DateTimeOffset receivedAt, string outcome, DateTimeOffset processedAt, CancellationToken cancellationToken = default);

    /// <summary>Logs an email send attempt; one row per attempt.</summary>
    Task LogEmailAsync(EmailLogEntry entry, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<EmailLogEntry>> GetEmailLogAsync(Guid escrowId, CancellationToken cancellationToken = default);

    /// <summary>
    /// The sent e-mail a bounce is about: the one Postmark accepted under <paramref name="providerMessageId"/>, else the
    /// latest one sent to <paramref name="toAddress"/> (any case); null when neither is known.
    /// </summary>
    Task<EmailLogEntry?> FindSentEmailAsync(string? providerMessageId, string? toAddress, CancellationToken cancellationToken = default);

    /// <summary>
    /// Records an inbound e-mail's outcome (idempotent by provider message id): a row still
    /// <see cref="InboundMessageRecord.Pending"/> takes it, keeping its first receipt time; any other row stays as it is.
    /// </summary>
    Task RecordInboundMessageAsync(InboundMessageRecord message, CancellationToken cancellationToken = default);

    /// <summary>
    /// Records that an inbound e-mail was received, before it is judged (its outcome <see cref="InboundMessageRecord.Pending"/>),
    /// and returns the receipt time of its first delivery: a retry of the same message is judged by that time.
    /// </summary>
    Task<DateTimeOffset> RecordInboundReceiptAsync(InboundMessageRecord message, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<InboundMessageRecord>> GetInboundMessagesAsync(Guid escrowId, CancellationToken cancellationToken = default);

    /// <summary>Inserts the row; a row whose <see cref="AuditEntry.DedupeKey"/> is already there is not added again.</summary>
    Task WriteAuditAsync(AuditEntry entry, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<AuditEntry>> GetAuditAsync(Guid? escrowId, int limit, CancellationToken cancellationToken = default);

    /// <summary>The rows that match every filter given, newest first.</summary>
    Task<IReadOnlyList<AuditEntry>> QueryAuditAsync(AuditQuery query, CancellationToken cancellationToken = default);

    /// <summary>Escrows created, or whose status changed, in [from, to): the day a reconciliation looks at. At most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<EscrowProjection>> GetEscrowsTouchedAsync(DateTimeOffset from, DateTimeOffset to, int limit, CancellationToken cancellationToken = default);

    /// <summary>Stores (or replaces) the reconciliation report of a UTC day, as JSON.</summary>
    Task SaveReconciliationReportAsync(DateOnly date, string reportJson, CancellationToken cancellationToken = default);

    Task<string?> GetReconciliationReportAsync(DateOnly date, CancellationToken cancellationToken = default);

    /// <summary>Counts and amounts of escrows per status (the projection), for metrics and reconciliation.</summary>
    Task<IReadOnlyList<StatusCount>> CountByStatusAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Per UTC hour in [from, to), oldest first: escrows created in it, and escrows that became released or refunded in it
    /// (by the projection's status_changed_at). Hours with nothing are left out. For the console's lifecycle chart.
    /// </summary>
    Task<IReadOnlyList<HourlyLifecycleCount>> CountLifecyclesPerHourAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default);

    /// <summary>True when the store answers (readiness).</summary>
    Task<bool> PingAsync(CancellationToken cancellationToken = default);
}

/// <summary>
/// The queryable row of one escrow. <see cref="Version"/> is the grain's history sequence, then <see cref="OutboxSeq"/>
/// (<c>EffectAge.Seq</c>) orders outbox changes of one version: a stale sync never overwrites a newer one.
/// </summary>
public sealed record EscrowProjection(
    Guid EscrowId,
    string RecipientId,
    string Status,
    long AmountMinor,
    string Currency,
    long RecipientShareMinor,
    long PlatformFeeMinor,
    string? PaymentIntentId,
    string? ChargeId,
    string? TransferId,
    DateTimeOffset CreatedAt,
    DateTimeOffset? Deadline,
    DateTimeOffset? ReplyDeadline,
    DateTimeOffset StatusChangedAt,
    int TransferAttempts,
    bool DisputeOpen,
    int Version,
    string? SenderKey = null,
    bool BodiesErased = false,
    DateTimeOffset? EffectWaitingSince = null,
    int OutboxSeq = 0,
    bool TransferRetriesExhausted = false);

/// <summary>One insert-only ledger row. A correction is a new row. <see cref="Data"/> is a small JSON object (no secrets, no bodies).</summary>
public sealed record LedgerEntry(
    Guid EscrowId,
    int Seq,
    string Kind,
    string Status,
    long? AmountMinor,
    string? Currency,
    DateTimeOffset At,
    string? Data);

public sealed record EscrowQuery(
    string? Status = null,
    string? RecipientId = null,
    bool StuckOnly = false,
    DateTimeOffset? Now = null,
    StuckRules? Rules = null,
    int Limit = 50,
    string? After = null,
    DateTimeOffset? CreatedFrom = null,
    DateTimeOffset? CreatedBefore = null);

public sealed record EscrowPage(IReadOnlyList<EscrowProjection> Items, string? Next);

public sealed record NewAlert(string Kind, string Severity, Guid? EscrowId, string DedupeKey, string Details, DateTimeOffset CreatedAt)
{
    public NewAlert(Domain.AlertKind kind, Guid? escrowId, string dedupeKey, string details, DateTimeOffset createdAt)
        : this(kind.Name, kind.Severity, escrowId, dedupeKey, details, createdAt)
    {
    }
}

public sealed record AlertRecord(
    long Id,
    string Kind,
    string Severity,
    Guid? EscrowId,
    string DedupeKey,
    string Details,
    DateTimeOffset CreatedAt,
    DateTimeOffset? AcknowledgedAt,
    string? AcknowledgedBy);

public sealed record HourlyLifecycleCount(DateTimeOffset Hour, long Created, long Released, long Refunded);

public sealed record StatusCount(string Status, string Currency, long Count, long AmountMinor);

public sealed record WebhookReceipt(bool AlreadyProcessed, int Attempts);

public sealed record EmailLogEntry(
    Guid? EscrowId,
    string Kind,
    string To,
    string Subject,
    string Outcome,
    string? ProviderMessageId,
    string? Error,
    DateTimeOffset At);

public sealed record InboundMessageRecord(
    string ProviderMessageId,
    Guid? EscrowId,
    string From,
    string Subject,
    DateTimeOffset ReceivedAt,
    bool WithinDeadline,
    bool GraceUsed,
    string? IgnoredReason,
    string Preview)
{
    /// <summary>The outcome of a message received but not judged yet (its handling was cut off, or is under way).</summary>
    public const string Pending = "pending";
}

/// <param name="KeyId">The API key's id (never the key itself).</param>
/// <param name="DedupeKey">Names the change the row records, so that writing it again after a crash adds nothing.</param>
public sealed record AuditEntry(
    long Id,
    string KeyId,
    string Action,
    Guid? EscrowId,
    string? Reason,
    DateTimeOffset At,
    string? Details,
    string? RecipientId = null,
    string? DedupeKey = null);

/// <summary>Filters of an audit read; null means any.</summary>
public sealed record AuditQuery(Guid? EscrowId, string? RecipientId, DateTimeOffset? Since, int Limit);
