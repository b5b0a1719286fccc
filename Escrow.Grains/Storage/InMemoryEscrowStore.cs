using System.Text.Json;
using static Escrow.Grains.Storage.EscrowStoreRules;

namespace Escrow.Grains.Storage;

/// <summary>
/// The no-configuration <see cref="IEscrowStore"/>: the same semantics as <see cref="PostgresEscrowStore"/>, held in
/// memory behind one lock. Timestamps are kept in UTC at microsecond precision, as PostgreSQL keeps them.
/// </summary>
public sealed partial class InMemoryEscrowStore(TimeProvider timeProvider) : IEscrowStore
{
    private readonly Lock _lock = new();
    private readonly Dictionary<Guid, EscrowProjection> _projections = [];
    private readonly Dictionary<(Guid EscrowId, int Seq), LedgerEntry> _ledger = [];
    private readonly Dictionary<long, AlertRecord> _alerts = [];
    private readonly Dictionary<string, long> _alertIdsByDedupeKey = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Provider, string EventId), WebhookRow> _webhooks = [];
    private readonly List<(long Id, EmailLogEntry Entry)> _emails = [];
    private readonly Dictionary<string, InboundMessageRecord> _inbound = new(StringComparer.Ordinal);
    private readonly List<AuditEntry> _audit = [];
    private long _nextAlertId = 1;
    private long _nextEmailId = 1;
    private long _nextAuditId = 1;

    private sealed record WebhookRow(string EventType, DateTimeOffset ReceivedAt, int Attempts, DateTimeOffset? ProcessedAt, string? Outcome);

    public Task SyncEscrowAsync(EscrowProjection projection, IReadOnlyList<LedgerEntry> entries, CancellationToken cancellationToken = default)
    {
        CheckProjection(projection);
        ArgumentNullException.ThrowIfNull(entries);
        foreach (var entry in entries)
        {
            CheckEntry(projection.EscrowId, entry);
        }
        cancellationToken.ThrowIfCancellationRequested();

        var normalised = projection with
        {
            CreatedAt = Micros(projection.CreatedAt),
            Deadline = Micros(projection.Deadline),
            ReplyDeadline = Micros(projection.ReplyDeadline),
            StatusChangedAt = Micros(projection.StatusChangedAt),
            EffectWaitingSince = Micros(projection.EffectWaitingSince),
        };
        lock (_lock)
        {
            foreach (var entry in entries)
            {
                _ledger.TryAdd((entry.EscrowId, entry.Seq), entry with { At = Micros(entry.At) });
            }
            if (!_projections.TryGetValue(projection.EscrowId, out var stored) || (stored.Version, stored.OutboxSeq).CompareTo((projection.Version, projection.OutboxSeq)) < 0)
            {
                _projections[projection.EscrowId] = normalised;
            }
        }
        return Task.CompletedTask;
    }

    public Task<EscrowProjection?> GetEscrowAsync(Guid escrowId, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            return Task.FromResult(_projections.GetValueOrDefault(escrowId));
        }
    }

    public Task<IReadOnlyList<LedgerEntry>> GetLedgerAsync(Guid escrowId, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            IReadOnlyList<LedgerEntry> rows = [.. _ledger.Values.Where(e => e.EscrowId == escrowId).OrderBy(e => e.Seq)];
            return Task.FromResult(rows);
        }
    }

    public Task<EscrowPage> QueryEscrowsAsync(EscrowQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        if (query.Status is not null)
        {
            CheckStatus(query.Status);
        }
        var limit = PageLimit(query.Limit);
        var after = query.After is null ? ((DateTimeOffset, string)?)null : ToKey(DecodeCursor(query.After));
        var now = query.Now ?? timeProvider.GetUtcNow();
        var rules = query.Rules ?? StuckRules.Default;

        lock (_lock)
        {
            var rows = _projections.Values
                .Where(p => query.Status is null || p.Status == query.Status)
                .Where(p => query.RecipientId is null || p.RecipientId == query.RecipientId)
                .Where(p => !query.StuckOnly || rules.IsStuck(p, now))
                .Where(p => (query.CreatedFrom is not { } from || p.CreatedAt >= from) && (query.CreatedBefore is not { } before || p.CreatedAt < before))
                .Select(p => (Key: ToKey((p.CreatedAt, p.EscrowId)), Row: p))
                .Where(x => after is not { } a || Compare(x.Key, a) > 0)
                .OrderBy(x => x.Key.CreatedAt).ThenBy(x => x.Key.Id, StringComparer.Ordinal)
                .Take(limit + 1)
                .Select(x => x.Row)
                .ToList();
            return Task.FromResult(ToPage(rows, limit));
        }
    }

    internal static EscrowPage ToPage(List<EscrowProjection> rows, int limit)
    {
        if (rows.Count <= limit)
        {
            return new EscrowPage(rows, null);
        }
        rows.RemoveRange(limit, rows.Count - limit);
        var last = rows[^1];
        return new EscrowPage(rows, EncodeCursor(last.CreatedAt, last.EscrowId));
    }

    // PostgreSQL orders uuids by their bytes, which is the order of their lower-case hex text.
    private static (DateTimeOffset CreatedAt, string Id) ToKey((DateTimeOffset CreatedAt, Guid EscrowId) key) =>
        (key.CreatedAt, key.EscrowId.ToString("N"));

    private static int Compare((DateTimeOffset CreatedAt, string Id) a, (DateTimeOffset CreatedAt, string Id) b)
    {
        var byTime = a.CreatedAt.CompareTo(b.CreatedAt);
        return byTime != 0 ? byTime : string.CompareOrdinal(a.Id, b.Id);
    }

    public Task<(AlertRecord Alert, bool Created)> RaiseAlertAsync(NewAlert alert, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(alert);
        ArgumentException.ThrowIfNullOrEmpty(alert.DedupeKey, nameof(alert.DedupeKey));
        lock (_lock)
        {
            if (_alertIdsByDedupeKey.TryGetValue(alert.DedupeKey, out var existingId))
            {
                return Task.FromResult((_alerts[existingId], false));
            }
            var record = new AlertRecord(_nextAlertId++, alert.Kind, alert.Severity, alert.EscrowId, alert.DedupeKey, alert.Details,
                Micros(alert.CreatedAt), null, null);
            _alerts[record.Id] = record;
            _alertIdsByDedupeKey[record.DedupeKey] = record.Id;
            return Task.FromResult((record, true));
        }
    }

    public Task<IReadOnlyList<AlertRecord>> ListAlertsAsync(bool openOnly, int limit, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            IReadOnlyList<AlertRecord> rows = [.. _alerts.Values
                .Where(a => !openOnly || a.AcknowledgedAt is null)
                .OrderByDescending(a => a.Id)
                .Take(ListLimit(limit))];
            return Task.FromResult(rows);
        }
    }

    /// <summary>The alerts with ids above <paramref name="afterId"/>, oldest first (for the alert deliveries kept in memory).</summary>
    internal IReadOnlyList<AlertRecord> AlertsAfter(long afterId)
    {
        lock (_lock)
        {
            return [.. _alerts.Values.Where(a => a.Id > afterId).OrderBy(a => a.Id)];
        }
    }

    internal long LastAlertId
    {
        get
        {
            lock (_lock)
            {
                return _nextAlertId - 1;
            }
        }
    }

    public Task<bool> AcknowledgeAlertAsync(long alertId, string acknowledgedBy, DateTimeOffset at, AuditEntry audit, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(acknowledgedBy);
        ArgumentNullException.ThrowIfNull(audit);
        lock (_lock)
        {
            if (!Acknowledge(alertId, acknowledgedBy, at))
            {
                return Task.FromResult(false);
            }
            AddAudit(audit);
            return Task.FromResult(true);
        }
    }

    public Task<bool> AcknowledgeAlertAsync(long alertId, string acknowledgedBy, DateTimeOffset at, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(acknowledgedBy);
        lock (_lock)
        {
            return Task.FromResult(Acknowledge(alertId, acknowledgedBy, at));
        }
    }

    private bool Acknowledge(long alertId, string acknowledgedBy, DateTimeOffset at)
    {
        if (!_alerts.TryGetValue(alertId, out var alert))
        {
            return false;
        }
        if (alert.AcknowledgedAt is null)
        {
            _alerts[alertId] = alert with { AcknowledgedAt = Micros(at), AcknowledgedBy = acknowledgedBy };
        }
        return true;
    }

    public Task<WebhookReceipt> RecordWebhookAsync(string provider, string eventId, string eventType, DateTimeOffset receivedAt,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(provider);
        ArgumentException.ThrowIfNullOrEmpty(eventId);
        ArgumentException.ThrowIfNullOrEmpty(eventType);
        lock (_lock)
        {
            var row = _webhooks.TryGetValue((provider, eventId), out var existing)
                ? existing with { Attempts = existing.Attempts + 1 }
                : new WebhookRow(eventType, Micros(receivedAt), 1, null, null);
            _webhooks[(provider, eventId)] = row;
            return Task.FromResult(new WebhookReceipt(row.ProcessedAt is not null, row.Attempts));
        }
    }

    public Task<bool> IsWebhookProcessedAsync(string provider, string eventId, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            return Task.FromResult(_webhooks.TryGetValue((provider, eventId), out var row) && row.ProcessedAt is not null);
        }
    }

    public Task RecordProcessedWebhookAsync(string provider, string eventId, string eventType, DateTimeOffset receivedAt, string outcome, DateTimeOffset processedAt,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(provider);
        ArgumentException.ThrowIfNullOrEmpty(eventId);
        ArgumentException.ThrowIfNullOrEmpty(eventType);
        ArgumentException.ThrowIfNullOrEmpty(outcome);
        lock (_lock)
        {
            if (!_webhooks.TryGetValue((provider, eventId), out var row))
            {
                _webhooks[(provider, eventId)] = new WebhookRow(eventType, Micros(receivedAt), 1, Micros(processedAt), outcome);
            }
            else if (row.ProcessedAt is null)
            {
                _webhooks[(provider, eventId)] = row with { ProcessedAt = Micros(processedAt), Outcome = outcome };
            }
        }
        return Task.CompletedTask;
    }

    public Task MarkWebhookProcessedAsync(string provider, string eventId, string outcome, DateTimeOffset processedAt,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(outcome);
        lock (_lock)
        {
            if (_webhooks.TryGetValue((provider, eventId), out var row) && row.ProcessedAt is null)
            {
                _webhooks[(provider, eventId)] = row with { ProcessedAt = Micros(processedAt), Outcome = outcome };
            }
        }
        return Task.CompletedTask;
    }

    public Task LogEmailAsync(EmailLogEntry entry, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        lock (_lock)
        {
            _emails.Add((_nextEmailId++, entry with { At = Micros(entry.At) }));
        }
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<EmailLogEntry>> GetEmailLogAsync(Guid escrowId, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            IReadOnlyList<EmailLogEntry> rows = [.. _emails
                .Where(e => e.Entry.EscrowId == escrowId)
                .OrderBy(e => e.Entry.At).ThenBy(e => e.Id)
                .Select(e => e.Entry)];
            return Task.FromResult(rows);
        }
    }

    public Task<EmailLogEntry?> FindSentEmailAsync(string? providerMessageId, string? toAddress, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            var sent = _emails.Where(e => e.Entry.Outcome == "sent").OrderByDescending(e => e.Entry.At).ThenByDescending(e => e.Id).Select(e => e.Entry).ToList();
            var found = (string.IsNullOrEmpty(providerMessageId) ? null : sent.FirstOrDefault(e => e.ProviderMessageId == providerMessageId))
                ?? (string.IsNullOrEmpty(toAddress) ? null : sent.FirstOrDefault(e => string.Equals(e.To, toAddress, StringComparison.OrdinalIgnoreCase)));
            return Task.FromResult(found);
        }
    }

    public Task RecordInboundMessageAsync(InboundMessageRecord message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentException.ThrowIfNullOrEmpty(message.ProviderMessageId, nameof(message.ProviderMessageId));
        lock (_lock)
        {
            if (_inbound.TryGetValue(message.ProviderMessageId, out var stored))
            {
                if (stored.IgnoredReason == InboundMessageRecord.Pending)
                {
                    _inbound[message.ProviderMessageId] = message with { ReceivedAt = stored.ReceivedAt };
                }
                return Task.CompletedTask;
            }
            _inbound.Add(message.ProviderMessageId, message with { ReceivedAt = Micros(message.ReceivedAt) });
        }
        return Task.CompletedTask;
    }

    public Task<DateTimeOffset> RecordInboundReceiptAsync(InboundMessageRecord message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentException.ThrowIfNullOrEmpty(message.ProviderMessageId, nameof(message.ProviderMessageId));
        lock (_lock)
        {
            if (!_inbound.TryGetValue(message.ProviderMessageId, out var stored))
            {
                stored = message with { ReceivedAt = Micros(message.ReceivedAt), IgnoredReason = InboundMessageRecord.Pending };
                _inbound.Add(message.ProviderMessageId, stored);
            }
            return Task.FromResult(stored.ReceivedAt);
        }
    }

    public Task<IReadOnlyList<InboundMessageRecord>> GetInboundMessagesAsync(Guid escrowId, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            IReadOnlyList<InboundMessageRecord> rows = [.. _inbound.Values
                .Where(m => m.EscrowId == escrowId)
                .OrderBy(m => m.ReceivedAt).ThenBy(m => m.ProviderMessageId, StringComparer.Ordinal)];
            return Task.FromResult(rows);
        }
    }

    public Task WriteAuditAsync(AuditEntry entry, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        lock (_lock)
        {
            AddAudit(entry);
        }
        return Task.CompletedTask;
    }

    private void AddAudit(AuditEntry entry)
    {
        if (entry.DedupeKey is null || !_audit.Any(a => a.DedupeKey == entry.DedupeKey))
        {
            _audit.Add(entry with { Id = _nextAuditId++, At = Micros(entry.At) });
        }
    }

    public Task<IReadOnlyList<AuditEntry>> GetAuditAsync(Guid? escrowId, int limit, CancellationToken cancellationToken = default) =>
        QueryAuditAsync(new AuditQuery(escrowId, null, null, limit), cancellationToken);

    public Task<IReadOnlyList<AuditEntry>> QueryAuditAsync(AuditQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        lock (_lock)
        {
            IReadOnlyList<AuditEntry> rows = [.. _audit
                .Where(a => (query.EscrowId is null || a.EscrowId == query.EscrowId)
                            && (query.RecipientId is null || a.RecipientId == query.RecipientId)
                            && (query.Since is null || a.At >= query.Since))
                .OrderByDescending(a => a.Id)
                .Take(ListLimit(query.Limit))];
            return Task.FromResult(rows);
        }
    }

    private readonly Dictionary<DateOnly, string> _reports = [];

    public Task<IReadOnlyList<EscrowProjection>> GetEscrowsTouchedAsync(DateTimeOffset from, DateTimeOffset to, int limit, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            IReadOnlyList<EscrowProjection> touched = _projections.Values
                .Where(p => (p.CreatedAt >= from && p.CreatedAt < to) || (p.StatusChangedAt >= from && p.StatusChangedAt < to))
                .OrderBy(p => p.CreatedAt).ThenBy(p => p.EscrowId)
                .Take(limit)
                .ToList();
            return Task.FromResult(touched);
        }
    }

    public Task SaveReconciliationReportAsync(DateOnly date, string reportJson, CancellationToken cancellationToken = default)
    {
        using (JsonDocument.Parse(reportJson))
        {
            // Only well-formed JSON is stored, as PostgreSQL's jsonb column would insist.
        }
        lock (_lock)
        {
            _reports[date] = reportJson;
        }
        return Task.CompletedTask;
    }

    public Task<string?> GetReconciliationReportAsync(DateOnly date, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            return Task.FromResult(_reports.TryGetValue(date, out var report) ? report : null);
        }
    }

    public Task<IReadOnlyList<StatusCount>> CountByStatusAsync(CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            IReadOnlyList<StatusCount> counts = _projections.Values
                .GroupBy(p => (p.Status, p.Currency))
                .Select(g => new StatusCount(g.Key.Status, g.Key.Currency, g.LongCount(), g.Sum(p => p.AmountMinor)))
                .OrderBy(c => c.Status, StringComparer.Ordinal).ThenBy(c => c.Currency, StringComparer.Ordinal)
                .ToList();
            return Task.FromResult(counts);
        }
    }

    public Task<IReadOnlyList<HourlyLifecycleCount>> CountLifecyclesPerHourAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default)
    {
        static DateTimeOffset Hour(DateTimeOffset t)
        {
            var utc = t.ToUniversalTime();
            return new DateTimeOffset(utc.Year, utc.Month, utc.Day, utc.Hour, 0, 0, TimeSpan.Zero);
        }
        lock (_lock)
        {
            var created = _projections.Values.Where(p => p.CreatedAt >= from && p.CreatedAt < to).Select(p => (Hour: Hour(p.CreatedAt), Status: "created"));
            var ended = _projections.Values
                .Where(p => p.Status is "released" or "refunded" && p.StatusChangedAt >= from && p.StatusChangedAt < to)
                .Select(p => (Hour: Hour(p.StatusChangedAt), p.Status));
            IReadOnlyList<HourlyLifecycleCount> counts = created.Concat(ended)
                .GroupBy(e => e.Hour)
                .OrderBy(g => g.Key)
                .Select(g => new HourlyLifecycleCount(g.Key, g.LongCount(e => e.Status == "created"), g.LongCount(e => e.Status == "released"), g.LongCount(e => e.Status == "refunded")))
                .ToList();
            return Task.FromResult(counts);
        }
    }

    public Task<bool> PingAsync(CancellationToken cancellationToken = default) => Task.FromResult(true);
}
