namespace Escrow.Grains;

/// <summary>Looks for stuck escrows on its own reminder and raises one <c>escrow_stuck</c> alert per escrow and episode.</summary>
[Alias("escrow.IMonitorGrain")]
public interface IMonitorGrain : IGrainWithIntegerKey
{
    /// <summary>Registers the reminder (idempotent); every host calls it at start.</summary>
    [Alias("ensure-scheduled")] Task EnsureScheduledAsync();

    /// <summary>Checks now; returns how many new alerts it raised.</summary>
    [Alias("check")] Task<int> CheckAsync();
}
