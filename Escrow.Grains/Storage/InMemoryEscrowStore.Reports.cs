using static Escrow.Grains.Storage.EscrowStoreRules;

namespace Escrow.Grains.Storage;

// The audit log and what reconciliation and the dashboard read.
public sealed partial class InMemoryEscrowStore
{
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
}
