using Escrow.Api.OperatorConsole;
using Escrow.Sandbox;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Orleans.Dashboard;
using Scalar.AspNetCore;

// The container's health check: ask a running instance, start nothing (no wget or curl in the runtime image).
if (HealthCheckCommand.Run(args) is { } healthExit)
{
    return healthExit;
}

var builder = WebApplication.CreateBuilder(args);
builder.Configuration.AddEscrowLoggingDefaults();
if (string.IsNullOrWhiteSpace(builder.Configuration["urls"]) && string.IsNullOrWhiteSpace(builder.Configuration["ASPNETCORE_URLS"]))
{
    builder.WebHost.UseUrls("http://127.0.0.1:5080");
}
// Before anything is generated or started: in live mode a missing or public secret stops the process here.
StartRefusal.EnsureSafe(builder.Configuration, servesApi: true);
var stripeSandbox = SandboxHosting.UsesStripeSandbox(builder.Configuration);
var postmarkSandbox = SandboxHosting.UsesPostmarkSandbox(builder.Configuration);
var storage = await LocalStorage.PrepareAsync(builder.Configuration);
var generated = SandboxHosting.ApplyDevelopmentDefaults(builder.Configuration, storage.SecretsFile);

builder.Services.AddEscrowServices(builder.Configuration);
builder.Services.AddEscrowSandboxes(builder.Configuration);
builder.Services.AddEscrowOptions<Escrow.Api.Hosting.ApiKeyOptions, Escrow.Api.Hosting.ApiKeyOptionsValidator>(
    builder.Configuration, Escrow.Api.Hosting.ApiKeyOptions.Section);
builder.Services.AddSingleton<ApiKeyRegistry>();
builder.Services.AddSingleton<WebhookEndpointCheck>();
builder.Services.AddHostedService<WebhookEndpointCheck.AtStart>();
builder.Services.AddSingleton<Escrow.Api.Admin.AdminOperations>();
builder.Services.AddProblemDetails();
builder.Services.AddExceptionHandler<Escrow.Api.Hosting.TransientFailureHandler>();
builder.Services.AddEscrowOpenApi();
builder.Services.HideAdminRoutesFromOpenApi(builder.Configuration);
builder.Services.AddEscrowRateLimits(builder.Configuration);
builder.Services.AddHealthChecks()
    .AddCheck<StoreHealthCheck>("store", tags: ["ready"])
    .AddCheck<ClusterHealthCheck>("cluster", tags: ["ready"]);
builder.Services.AddAuthentication()
    .AddScheme<AuthenticationSchemeOptions, DashboardAuthenticationHandler>(DashboardAuthenticationHandler.SchemeName, null);
builder.Services.AddAuthorizationBuilder()
    .AddPolicy(DashboardAuthenticationHandler.Policy, p => p.AddAuthenticationSchemes(DashboardAuthenticationHandler.SchemeName).RequireRole("admin"));
builder.Services.AddConsoleAuth();
builder.UseOrleans(silo => silo.AddEscrow(builder.Configuration));

var app = builder.Build();
app.UseExceptionHandler();
app.UseStatusCodePages();
app.UseEscrowRateLimits();
app.UseMiddleware<RequestBodyGuard>();
app.UseAuthorization();

app.MapOpenApi();
app.MapScalarApiReference();
// Metrics name escrows' counts and the service's inner workings: operators only (Prometheus sends the admin key as a bearer token).
app.MapPrometheusScrapingEndpoint("/metrics").RequireAuthorization(DashboardAuthenticationHandler.Policy);
app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false });
app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = c => c.Tags.Contains("ready") });
app.MapRecipients();
app.MapOnboarding();
app.MapEscrows();
app.MapStripeWebhook();
app.MapPostmarkInbound();
app.MapPostmarkBounce();
app.MapAdmin();
app.MapConsole();
app.MapSenderPage();
if (stripeSandbox)
{
    app.MapStripeSandbox();
}
if (postmarkSandbox)
{
    app.MapPostmarkSandbox();
}
app.MapOrleansDashboard(routePrefix: "/dashboard").RequireAuthorization(DashboardAuthenticationHandler.Policy);

app.Lifetime.ApplicationStarted.Register(() => StartupBanner.Print(app, stripeSandbox, postmarkSandbox, generated, storage));
if (storage.Cluster is { } cluster)
{
    // After the silo has stopped and written its last state.
    app.Lifetime.ApplicationStopped.Register(cluster.Stop);
}
app.Run();
return 0;

public partial class Program;
