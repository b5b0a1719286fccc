using Escrow.Silo;

// A standalone silo for clusters: ConnectionStrings__Escrow and Silo__Clustering=AdoNet are expected.
if (HealthCheckCommand.Run(args) is { } healthExit)
{
    return healthExit;
}

var builder = WebApplication.CreateBuilder(args);
StartRefusal.EnsureSafe(builder.Configuration, servesApi: false);
builder.Services.AddEscrowServices(builder.Configuration);
builder.UseOrleans(silo => silo.AddEscrow(builder.Configuration));
builder.Services.AddHealthChecks();
var app = builder.Build();
app.MapPrometheusScrapingEndpoint("/metrics");
app.MapHealthChecks("/health/live");
app.Run();
return 0;
