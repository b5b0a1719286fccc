using System.Collections.Immutable;

namespace Escrow;

/// <summary>The daily three-way check of escrows, the ledger and Stripe (key 0).</summary>
[Alias("escrow.IReconciliationGrain")]
public interface IReconciliationGrain : IGrainWithIntegerKey
{
    /// <summary>Reconciles one UTC day, stores the report, raises an alert per finding, and returns the report.</summary>
    [Alias("run")] Task<ReconciliationReport> RunAsync(DateOnly date, string triggeredBy);

    /// <summary>Registers the daily reminder (idempotent); every host calls it at start.</summary>
    [Alias("ensure-scheduled")] Task EnsureScheduledAsync();
}

[GenerateSerializer, Immutable, Alias("escrow.reconciliation-report.v1")]
public sealed record ReconciliationReport(
    [property: Id(0)] DateOnly Date,
    [property: Id(1)] DateTimeOffset GeneratedAt,
    [property: Id(2)] string TriggeredBy,
    [property: Id(3)] ImmutableArray<ReconciliationCount> Counts,
    [property: Id(4)] ImmutableArray<ReconciliationIssue> Issues,
    [property: Id(5)] ImmutableArray<ReconciliationFinding> Findings,
    [property: Id(6)] int EscrowsChecked,
    [property: Id(7)] int PaymentIntentsChecked);

[GenerateSerializer, Immutable, Alias("escrow.reconciliation-count.v1")]
public sealed record ReconciliationCount([property: Id(0)] string Status, [property: Id(1)] string Currency, [property: Id(2)] long Count, [property: Id(3)] long AmountMinor);

[GenerateSerializer, Immutable, Alias("escrow.reconciliation-issue.v1")]
public sealed record ReconciliationIssue([property: Id(0)] string Kind, [property: Id(1)] long Count, [property: Id(2)] string Detail);

[GenerateSerializer, Immutable, Alias("escrow.reconciliation-finding.v1")]
public sealed record ReconciliationFinding([property: Id(0)] string Kind, [property: Id(1)] Guid? EscrowId, [property: Id(2)] string Detail);
