using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Escrow.Simulation;

/// <summary>
/// The silo's reminder table, unchanged, with a copy of when each grain's reminder first fires on the simulation's
/// clock: the table's start times are on real time (the reminder service's clock), not the simulation's. The driver
/// plays the reminder service with it (and still asks the table whether a reminder exists).
/// </summary>
public sealed class SimReminderTable(IReminderTable inner, FakeTimeProvider clock) : IReminderTable
{
    private readonly Lock _lock = new();
    private readonly Dictionary<GrainId, Dictionary<string, DateTimeOffset>> _firesAt = [];

    /// <summary>Replaces the table registered so far (the in-memory one) with itself wrapped around it.</summary>
    public static void Decorate(IServiceCollection services, FakeTimeProvider clock, Action<SimReminderTable> created)
    {
        var registered = services.Last(d => d.ServiceType == typeof(IReminderTable) && !d.IsKeyedService);
        services.Remove(registered);
        services.AddSingleton<IReminderTable>(sp =>
        {
            var table = registered.ImplementationInstance as IReminderTable
                ?? registered.ImplementationFactory?.Invoke(sp) as IReminderTable
                ?? (IReminderTable)ActivatorUtilities.CreateInstance(sp, registered.ImplementationType!);
            var decorated = new SimReminderTable(table, clock);
            created(decorated);
            return decorated;
        });
    }

    /// <summary>
    /// When the grain's earliest reminder first fires on the simulation's clock; null when none was registered here.
    /// A write whose outcome is unknown (the table's call failed) counts as firing now, so it never holds a tick back.
    /// </summary>
    public DateTimeOffset? FirstFiresAt(GrainId grainId)
    {
        lock (_lock)
        {
            return _firesAt.TryGetValue(grainId, out var rows) && rows.Count > 0 ? rows.Values.Min() : null;
        }
    }

    public Task StartAsync(CancellationToken cancellationToken = default) => inner.StartAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken = default) => inner.StopAsync(cancellationToken);

    public Task<ReminderTableData> ReadRows(GrainId grainId) => inner.ReadRows(grainId);

    public Task<ReminderTableData> ReadRows(GrainId grainId, CancellationToken cancellationToken) => inner.ReadRows(grainId, cancellationToken);

    public Task<ReminderTableData> ReadRows(uint begin, uint end) => inner.ReadRows(begin, end);

    public Task<ReminderTableData> ReadRows(uint begin, uint end, CancellationToken cancellationToken) => inner.ReadRows(begin, end, cancellationToken);

    public Task<ReminderEntry?> ReadRow(GrainId grainId, string reminderName) => inner.ReadRow(grainId, reminderName);

    public Task<ReminderEntry?> ReadRow(GrainId grainId, string reminderName, CancellationToken cancellationToken) => inner.ReadRow(grainId, reminderName, cancellationToken);

    public Task<string?> UpsertRow(ReminderEntry entry) => UpsertRow(entry, CancellationToken.None);

    public async Task<string?> UpsertRow(ReminderEntry entry, CancellationToken cancellationToken)
    {
        // The reminder service dates the first tick on real time (now + due time); the same due time on our clock.
        var firesAt = clock.GetUtcNow() + (entry.StartAt - DateTime.UtcNow);
        try
        {
            var etag = await inner.UpsertRow(entry, cancellationToken);
            Record(entry.GrainId, entry.ReminderName, firesAt);
            return etag;
        }
        catch
        {
            Record(entry.GrainId, entry.ReminderName, DateTimeOffset.MinValue);
            throw;
        }
    }

    private void Record(GrainId grainId, string reminderName, DateTimeOffset firesAt)
    {
        lock (_lock)
        {
            if (!_firesAt.TryGetValue(grainId, out var rows))
            {
                _firesAt[grainId] = rows = new(StringComparer.Ordinal);
            }
            rows[reminderName] = firesAt;
        }
    }

    public Task<bool> RemoveRow(GrainId grainId, string reminderName, string eTag) => RemoveRow(grainId, reminderName, eTag, CancellationToken.None);

    public async Task<bool> RemoveRow(GrainId grainId, string reminderName, string eTag, CancellationToken cancellationToken)
    {
        bool removed;
        try
        {
            removed = await inner.RemoveRow(grainId, reminderName, eTag, cancellationToken);
        }
        catch
        {
            Record(grainId, reminderName, DateTimeOffset.MinValue);
            throw;
        }
        if (removed)
        {
            lock (_lock)
            {
                if (_firesAt.TryGetValue(grainId, out var rows) && rows.Remove(reminderName) && rows.Count == 0)
                {
                    _firesAt.Remove(grainId);
                }
            }
        }
        return removed;
    }

    public Task TestOnlyClearTable() => TestOnlyClearTable(CancellationToken.None);

    public async Task TestOnlyClearTable(CancellationToken cancellationToken)
    {
        await inner.TestOnlyClearTable(cancellationToken);
        lock (_lock)
        {
            _firesAt.Clear();
        }
    }
}
