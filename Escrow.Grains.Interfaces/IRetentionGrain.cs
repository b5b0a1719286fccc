namespace Escrow;

/// <summary>Erases the message bodies of escrows finished longer ago than Retention:MessageBodies, daily (key 0).</summary>
[Alias("escrow.IRetentionGrain")]
public interface IRetentionGrain : IGrainWithIntegerKey
{
    /// <summary>Registers the daily reminder (idempotent); every host calls it at start.</summary>
    [Alias("ensure-scheduled")] Task EnsureScheduledAsync();

    /// <summary>Erases now; returns how many escrows' bodies it erased.</summary>
    [Alias("run")] Task<int> RunAsync();
}
