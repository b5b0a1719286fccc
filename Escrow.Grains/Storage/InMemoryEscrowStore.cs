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

    public Task<bool> PingAsync(CancellationToken cancellationToken = default) => Task.FromResult(true);
}
