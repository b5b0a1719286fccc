using Escrow.Grains.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Escrow.Grains;

/// <summary>How long personal texts are kept (section "Retention"). Durations are ISO 8601.</summary>
public sealed class RetentionOptions
{
    public const string Section = "Retention";

    /// <summary>Subjects, messages and inbound previews of escrows finished longer ago than this are erased.</summary>
    public TimeSpan MessageBodies { get; set; } = TimeSpan.FromDays(90);

    /// <summary>How often the retention runs.</summary>
    public TimeSpan Period { get; set; } = TimeSpan.FromDays(1);

    /// <summary>The most escrows one run erases; the rest wait for the next run.</summary>
    public int EscrowsPerRunMax { get; set; } = 10_000;
}

public sealed class RetentionOptionsValidator : IValidateOptions<RetentionOptions>
{
    public ValidateOptionsResult Validate(string? name, RetentionOptions o)
    {
        var errors = new List<string>();
        if (o.MessageBodies < TimeSpan.FromDays(1))
        {
            errors.Add("Retention:MessageBodies must be at least P1D (default P90D).");
        }
        if (o.Period < TimeSpan.FromMinutes(1) || o.Period > TimeSpan.FromDays(7))
        {
            errors.Add("Retention:Period must be PT1M to P7D (default P1D).");
        }
        if (o.EscrowsPerRunMax is < 1 or > 100_000)
        {
            errors.Add("Retention:EscrowsPerRunMax must be 1..100000 (default 10000).");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

/// <summary>
/// Erases the message bodies (subjects, messages, inbound subjects and previews) of escrows finished longer ago than
/// Retention:MessageBodies, on its own daily reminder; each run is audited. The sender's address is kept: only an
/// erasure request removes it.
/// </summary>
[GrainType("retention")]
public sealed partial class RetentionGrain(
    TimeProvider clock,
    IEscrowStore store,
    IPersonalDataStore personalData,
    IOptions<RetentionOptions> options,
    ILogger<RetentionGrain> logger) : Grain, IRetentionGrain, IRemindable
{
    private const string ReminderName = "retention";

    /// <summary>The audit action of a run.</summary>
    public const string AuditAction = "privacy.retention";

    public async Task EnsureScheduledAsync() => await this.RegisterOrUpdateReminder(ReminderName, options.Value.Period, options.Value.Period);

    public async Task ReceiveReminder(string reminderName, TickStatus status) => await RunAsync();

    public async Task<int> RunAsync()
    {
        var now = clock.GetUtcNow();
        var due = await personalData.FindEscrowsToRetireAsync(now - options.Value.MessageBodies, options.Value.EscrowsPerRunMax);
        var erased = new List<Guid>();
        foreach (var p in due)
        {
            var result = await GrainFactory.GetGrain<IEscrowGrain>(p.EscrowId).ErasePersonalDataAsync(bodiesOnly: true);
            if (result.Accepted || result.Rejection == Rejection.AlreadyDone)
            {
                erased.Add(p.EscrowId);
            }
        }
        if (erased.Count == 0)
        {
            return 0;
        }
        var rows = await personalData.ErasePersonalDataAsync(new PersonalDataErasure(null, erased));
        await store.WriteAuditAsync(new AuditEntry(0, "retention", AuditAction, null, null, now,
            $"message bodies of {erased.Count} escrows finished before {now - options.Value.MessageBodies:u} erased ({rows})"));
        LogErased(erased.Count);
        return erased.Count;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Retention: the message bodies of {Count} escrows were erased")]
    private partial void LogErased(int count);
}
