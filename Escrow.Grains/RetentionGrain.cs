namespace Escrow.Grains;

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
