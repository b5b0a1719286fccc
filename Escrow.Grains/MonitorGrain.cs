using Escrow.Grains.Domain;
using Escrow.Grains.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Escrow.Grains;

/// <summary>The stuck-escrow monitor's settings (section "Monitor"); the thresholds are the one set of <see cref="StuckRules"/>.</summary>
public sealed class MonitorOptions
{
    public const string Section = "Monitor";

    public TimeSpan Period { get; set; } = TimeSpan.FromMinutes(5);

    public TimeSpan HeldPastReplyDeadlineStuckAfter { get; set; } = StuckRules.Default.HeldPastReplyDeadline;

    public TimeSpan ProcessingStuckAfter { get; set; } = StuckRules.Default.Processing;

    public TimeSpan RefundPendingStuckAfter { get; set; } = StuckRules.Default.RefundPending;

    public TimeSpan PendingUserSetupStuckAfter { get; set; } = StuckRules.Default.PendingUserSetup;

    public TimeSpan TransferFailedStuckAfter { get; set; } = StuckRules.Default.TransferFailed;

    /// <summary>How long an effect (a Stripe call, an e-mail, an alert...) may wait in an escrow's outbox.</summary>
    public TimeSpan EffectStuckAfter { get; set; } = StuckRules.Default.EffectWaiting;

    /// <summary>The most stuck escrows one check alerts about; the rest wait for the next check.</summary>
    public int EscrowsPerCheckMax { get; set; } = 1_000;

    public StuckRules Rules() => new(HeldPastReplyDeadlineStuckAfter, ProcessingStuckAfter, RefundPendingStuckAfter, PendingUserSetupStuckAfter, TransferFailedStuckAfter, EffectStuckAfter);
}

public sealed class MonitorOptionsValidator : IValidateOptions<MonitorOptions>
{
    public ValidateOptionsResult Validate(string? name, MonitorOptions o)
    {
        var errors = new List<string>();
        if (o.Period < TimeSpan.FromSeconds(1) || o.Period > TimeSpan.FromDays(1))
        {
            errors.Add("Monitor:Period must be 1 second to 1 day (default PT5M).");
        }
        foreach (var (key, value) in new[]
        {
            ("HeldPastReplyDeadlineStuckAfter", o.HeldPastReplyDeadlineStuckAfter), ("ProcessingStuckAfter", o.ProcessingStuckAfter),
            ("RefundPendingStuckAfter", o.RefundPendingStuckAfter), ("PendingUserSetupStuckAfter", o.PendingUserSetupStuckAfter),
            ("TransferFailedStuckAfter", o.TransferFailedStuckAfter), ("EffectStuckAfter", o.EffectStuckAfter),
        })
        {
            if (value <= TimeSpan.Zero)
            {
                errors.Add($"Monitor:{key} must be a positive duration.");
            }
        }
        if (o.EscrowsPerCheckMax is < 1 or > 100_000)
        {
            errors.Add("Monitor:EscrowsPerCheckMax must be 1..100000.");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

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
