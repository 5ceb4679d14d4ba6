// Provisions the local stack's Kafka with the Admin API, as its super user: topics, SCRAM users, ACLs.
//
// Run by eucaim_node.stack once Kafka is ready (Java's single-file launcher, JEP 330, with the Kafka jars
// on the class path):  java -cp '<kafka libs>/*' Provision.java <client.properties> <spec>
// The spec, rendered from the node's grant matrix (eucaim_node.events.grants), has one item a line:
//   topic <name>                              create if missing (broker defaults: partitions, replication)
//   user <principal> <password file>          upsert the SCRAM-SHA-512 credential
//   acl <principal> TOPIC|GROUP <name> <op>   ALLOW User:<principal> <op> on the literal resource, any host
//   superuser <principal>                     never touched: neither its SCRAM credential nor its ACLs
// The matrix is the whole truth: every ACL the spec does not list is deleted (but a super user's), and so is
// every SCRAM credential of a user that is neither a spec user nor a super user (a principal dropped from the
// declaration can no longer log in).
// Idempotent; exits non-zero with the failing step on stderr.

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialAlteration;
import org.apache.kafka.clients.admin.UserScramCredentialDeletion;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class Provision {
    private static final int SCRAM_ITERATIONS = 8192;

    public static void main(String[] args) throws Exception {
        Properties config = new Properties();
        try (var in = Files.newInputStream(Path.of(args[0]))) {
            config.load(in);
        }
        List<NewTopic> topics = new ArrayList<>();
        List<UserScramCredentialAlteration> users = new ArrayList<>();
        Set<AclBinding> acls = new HashSet<>();
        Set<String> declared = new HashSet<>();
        Set<String> superUsers = new HashSet<>();
        for (String line : Files.readAllLines(Path.of(args[1]))) {
            String[] f = line.trim().split("\\s+");
            switch (f[0]) {
                case "topic" -> topics.add(new NewTopic(f[1], Optional.empty(), Optional.empty()));
                case "user" -> {
                    declared.add(f[1]);
                    String password = Files.readString(Path.of(f[2])).strip();
                    users.add(new UserScramCredentialUpsertion(f[1],
                            new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS), password));
                }
                case "acl" -> {
                    String principal = "User:" + f[1];
                    acls.add(new AclBinding(new ResourcePattern(ResourceType.valueOf(f[2]), f[3], PatternType.LITERAL),
                            new AccessControlEntry(principal, "*", AclOperation.valueOf(f[4]), AclPermissionType.ALLOW)));
                }
                case "superuser" -> superUsers.add(f[1]);
                case "" -> { }
                default -> throw new IllegalArgumentException("unknown spec line: " + line);
            }
        }
        try (Admin admin = Admin.create(config)) {
            step("creating topics", () -> {
                for (var entry : admin.createTopics(topics).values().entrySet()) {
                    try {
                        entry.getValue().get();
                    } catch (ExecutionException e) {
                        if (!(e.getCause() instanceof TopicExistsException)) throw e;
                    }
                }
            });
            step("upserting SCRAM users", () -> admin.alterUserScramCredentials(users).all().get());
            step("removing SCRAM users the spec does not declare", () -> {
                List<UserScramCredentialAlteration> dropped = new ArrayList<>();
                for (var user : admin.describeUserScramCredentials().all().get().values()) {
                    if (declared.contains(user.name()) || superUsers.contains(user.name())) continue;
                    for (var info : user.credentialInfos()) {
                        dropped.add(new UserScramCredentialDeletion(user.name(), info.mechanism()));
                    }
                }
                if (!dropped.isEmpty()) admin.alterUserScramCredentials(dropped).all().get();
                System.out.printf("SCRAM credentials of undeclared users deleted: %d%n", dropped.size());
            });
            step("applying ACLs", () -> {
                Set<AclBinding> existing = new HashSet<>(admin.describeAcls(AclBindingFilter.ANY).values().get());
                List<AclBindingFilter> stale = existing.stream()
                        .filter(b -> !isSuperUser(b.entry().principal(), superUsers) && !acls.contains(b))
                        .map(AclBinding::toFilter).collect(Collectors.toList());
                if (!stale.isEmpty()) admin.deleteAcls(stale).all().get();
                List<AclBinding> missing = acls.stream().filter(b -> !existing.contains(b)).collect(Collectors.toList());
                if (!missing.isEmpty()) admin.createAcls(missing).all().get();
                System.out.printf("ACLs: %d in force, %d created, %d deleted%n", acls.size(), missing.size(), stale.size());
            });
        }
    }

    private static boolean isSuperUser(String principal, Set<String> superUsers) {
        return principal.startsWith("User:") && superUsers.contains(principal.substring("User:".length()));
    }

    interface Step {
        void run() throws Exception;
    }

    private static void step(String what, Step step) {
        try {
            step.run();
        } catch (Exception e) {
            Throwable cause = e instanceof ExecutionException && e.getCause() != null ? e.getCause() : e;
            System.err.println("provisioning Kafka failed while " + what + ": " + cause);
            System.exit(1);
        }
    }
}
