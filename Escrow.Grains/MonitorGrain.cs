namespace Escrow.Grains;

/// <summary>
/// Raises <c>escrow_stuck</c> once per escrow and episode of each <see cref="StuckRules.Conditions"/> (which rule, and
/// since when): an escrow that leaves the status and gets stuck in it again is a new alert; one that stays stuck is
/// not alerted again; one stuck two ways at once gets one alert per way.
/// </summary>
[GrainType("monitor")]
public sealed partial class MonitorGrain(
    TimeProvider clock,
    IEscrowStore store,
    IOptions<MonitorOptions> options,
    ILogger<MonitorGrain> logger) : Grain, IMonitorGrain, IRemindable
{
    private const string ReminderName = "stuck-escrows";

    public async Task EnsureScheduledAsync()
    {
        var period = options.Value.Period;
        await this.RegisterOrUpdateReminder(ReminderName, period, period);
    }

    public async Task ReceiveReminder(string reminderName, TickStatus status) => await CheckAsync();

    public async Task<int> CheckAsync()
    {
        var settings = options.Value;
        var rules = settings.Rules();
        var now = clock.GetUtcNow();
        var raised = 0;
        var seen = 0;
        string? after = null;
        do
        {
            var page = await store.QueryEscrowsAsync(new EscrowQuery(StuckOnly: true, Now: now, Rules: rules, Limit: 500, After: after));
            foreach (var p in page.Items)
            {
                foreach (var condition in rules.Conditions(p, now))
                {
                    var (_, created) = await store.RaiseAlertAsync(new NewAlert(AlertKind.EscrowStuck, p.EscrowId,
                        $"escrow_stuck/{p.EscrowId}/{condition.Name}/{condition.Since.UtcTicks}",
                        $"{condition.Description}: see /console/escrows/{p.EscrowId} and the README's Operations.",
                        now));
                    raised += created ? 1 : 0;
                }
            }
            seen += page.Items.Count;
            after = page.Next;
        }
        while (after is not null && seen < settings.EscrowsPerCheckMax);

        if (raised > 0)
        {
            LogRaised(raised);
        }
        return raised;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Stuck-escrow monitor: {Count} new escrow_stuck alerts")]
    private partial void LogRaised(int count);
}
